//! template.yaml and docs/openapi.yaml as data, for the tests that check
//! them against the code (route parity, IAM parity, alarms).
//!
//! The YAML is parsed (saphyr keeps user-defined tags) and turned into the
//! JSON CloudFormation itself works on: short-form intrinsics become their
//! long form (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt":
//! ["A", "B"]}`, `!If [c, a, b]` → `{"Fn::If": [c, a, b]}`, …).
//! `scripts/emulator.py` reads the template the same way (PyYAML with a
//! loader for the same tags).

use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_owned()
}

/// A YAML file of the workspace as JSON.
pub fn load(relative: &str) -> Value {
    let path = workspace().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn template() -> Value {
    load("template.yaml")
}

pub fn openapi() -> Value {
    load("docs/openapi.yaml")
}

/// One YAML document as JSON.
pub fn parse(text: &str) -> Result<Value, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.as_slice() {
        [doc] => to_json(doc),
        other => Err(format!("{} YAML documents, expected one", other.len())),
    }
}

fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Value(s) => scalar(s),
        Yaml::Representation(text, _, _) => Value::String(text.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match to_json(k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tag, inner) => intrinsic(&tag.suffix, to_json(inner)?)?,
        Yaml::Alias(_) => return Err("YAML aliases are not used here".into()),
        Yaml::BadValue => return Err("a value that does not parse".into()),
    })
}

fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) => Value::from(f.into_inner()),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

/// A short-form intrinsic function in its long form.
fn intrinsic(tag: &str, arg: Value) -> Result<Value, String> {
    let long = match tag {
        "Ref" | "Condition" => tag.to_owned(),
        "GetAtt" => {
            // `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`.
            let arg = match arg {
                Value::String(s) => match s.split_once('.') {
                    Some((a, b)) => Value::Array(vec![a.into(), b.into()]),
                    None => return Err(format!("!GetAtt {s}: no attribute")),
                },
                other => other,
            };
            return Ok(single("Fn::GetAtt", arg));
        }
        "If" | "Sub" | "Join" | "Select" | "Split" | "Equals" | "And" | "Or" | "Not" | "FindInMap" | "Base64"
        | "Cidr" | "GetAZs" | "ImportValue" => format!("Fn::{tag}"),
        other => return Err(format!("unknown tag !{other}")),
    };
    Ok(single(&long, arg))
}

fn single(key: &str, value: Value) -> Value {
    Value::Object(Map::from_iter([(key.to_owned(), value)]))
}

/// `value` with every `Fn::If` decided by `condition` and every
/// `!Ref AWS::NoValue` left out, as CloudFormation deploys it.
pub fn resolve_ifs(value: &Value, condition: &dyn Fn(&str) -> bool) -> Option<Value> {
    match value {
        Value::Object(m) if m.len() == 1 && m.contains_key("Fn::If") => {
            let args = m["Fn::If"].as_array().filter(|a| a.len() == 3).expect("Fn::If takes three arguments");
            let name = args[0].as_str().expect("Fn::If names a condition");
            resolve_ifs(&args[if condition(name) { 1 } else { 2 }], condition)
        }
        Value::Object(m) if m.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") => None,
        Value::Object(m) => {
            Some(Value::Object(m.iter().filter_map(|(k, v)| Some((k.clone(), resolve_ifs(v, condition)?))).collect()))
        }
        Value::Array(items) => Some(Value::Array(items.iter().filter_map(|v| resolve_ifs(v, condition)).collect())),
        other => Some(other.clone()),
    }
}

/// One `AWS::Serverless::Function` of the template.
#[derive(Clone, Debug)]
pub struct Function {
    /// Its logical id (`GetKeyFunction`).
    pub resource: String,
    /// The binary its build runs (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Its environment on top of `Globals` (`Properties.Environment.Variables`).
    pub environment: Map<String, Value>,
    /// (METHOD, path) of each `HttpApi` event.
    pub http_events: Vec<(String, String)>,
    /// `Properties.Policies`, as written (resolve with `resolve_ifs`).
    pub policies: Value,
}

impl Function {
    /// What the function serves, as its `KEYSRV_ROUTE` names it: a route,
    /// or `sweep_files`. `None` for Cognito's trigger, a binary of its own.
    pub fn route_var(&self) -> Option<&str> {
        self.environment.get("KEYSRV_ROUTE").and_then(Value::as_str)
    }

    /// The API route this function serves (`None` for a function without an
    /// HTTP event).
    pub fn route(&self) -> Option<String> {
        if self.http_events.is_empty() {
            return None;
        }
        self.route_var().map(str::to_owned)
    }

    /// The name a test knows the function by: what it serves, else its
    /// binary's name.
    pub fn name(&self) -> String {
        self.route_var().unwrap_or(&self.binary).to_owned()
    }
}

/// Every function of the template, in document order.
pub fn functions(template: &Value) -> Vec<Function> {
    let resources = template["Resources"].as_object().expect("template.yaml has Resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, r)| {
            let props = &r["Properties"];
            let http_events = props["Events"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, e)| e["Type"] == "HttpApi")
                .map(|(_, e)| {
                    let p = &e["Properties"];
                    (
                        p["Method"].as_str().expect("an HttpApi event has a Method").to_uppercase(),
                        p["Path"].as_str().expect("an HttpApi event has a Path").to_owned(),
                    )
                })
                .collect();
            Function {
                resource: name.clone(),
                binary: r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_default().to_owned(),
                environment: props["Environment"]["Variables"].as_object().cloned().unwrap_or_default(),
                http_events,
                policies: props["Policies"].clone(),
            }
        })
        .collect()
}

/// (METHOD, path, operationId) of every operation under `paths` of an
/// OpenAPI document.
pub fn openapi_operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("openapi.yaml has paths") {
        for (method, op) in item.as_object().into_iter().flatten() {
            if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method.as_str()) {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                out.push((method.to_uppercase(), path.clone(), id.to_owned()));
            }
        }
    }
    out
}
