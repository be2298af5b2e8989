#!/usr/bin/env python3
"""Local AWS for keysrv: moto in server mode, set up from template.yaml.

    emulator.py up --port PORT --state-dir DIR [--wrapping kms|secretsmanager]
    emulator.py down --state-dir DIR
    emulator.py token --state-dir DIR JID
    emulator.py signing-key --state-dir DIR

`up` starts `moto_server` on 127.0.0.1:PORT (log DIR/moto.log, pid DIR/moto.pid;
one request at a time, see `serve-moto`),
then creates the stateful resources that template.yaml defines -- DynamoDB
table, KMS key (+ alias), master-key secret, files bucket (its bucket policy
is not applied: see `bucket_policy`), Cognito user pool and app client -- from
the template's own Properties, and writes DIR/env (KEY=value lines for
`set -a; . DIR/env`), DIR/env.json, and DIR/sam-env.json (the same for
`sam local --env-vars`), and DIR/cognito-signing-key.pem (see `signing-key`).
Functions and the HTTP API are not emulated: `keysrv server --backend aws` plays
the gateway locally.

Conditions are evaluated as a stack with WrappingMode=--wrapping and
AllowPasswordAuth=true would be. moto keeps its state in memory only: `down`
forgets everything.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
STACK_NAME = "local"  # so !Sub keysrv-${AWS::StackName} -> keysrv-local
TABLE_NAME = "keysrv-local"
FILES_BUCKET_NAME = "keysrv-local-files"  # CloudFormation would generate one
LOCAL_PARAMETERS = {"AllowPasswordAuth": "true"}  # `keysrv token` signs in with a password
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def log(msg: str) -> None:
    print(f"emulator: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- template


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags (!Ref, !Sub, ...) as
    their long form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _construct(node: yaml.Node, loader: CfnLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _add_tag(tag: str, key: str) -> None:
    def construct(loader: CfnLoader, node: yaml.Node) -> Any:
        value = _construct(node, loader)
        if key == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {key: value}

    CfnLoader.add_constructor(f"!{tag}", construct)


for _tag in ("Ref", "Condition"):
    _add_tag(_tag, _tag)
for _tag in ("Sub", "GetAtt", "If", "Equals", "Not", "And", "Or", "Join", "Select", "Split",
             "FindInMap", "Base64", "ImportValue", "GetAZs", "Cidr", "Length", "ToJsonString"):
    _add_tag(_tag, f"Fn::{_tag}")


def load_template(path: Path = TEMPLATE) -> dict:
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 -- a SafeLoader subclass


class NoValue:
    """AWS::NoValue: the property (or list item) disappears."""


class Unresolved(Exception):
    pass


class Stack:
    """Just enough of CloudFormation to read template.yaml: parameters (defaults +
    overrides), pseudo parameters, conditions, and the intrinsics it uses. Refs and
    GetAtts to resources resolve to what `up` created in the emulator."""

    def __init__(self, template: dict, overrides: dict[str, str]):
        self.template = template
        self.params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = overrides.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"template parameter {name} has no default and no local value")
            allowed = spec.get("AllowedValues")
            if allowed is not None and str(value) not in [str(a) for a in allowed]:
                raise SystemExit(f"parameter {name}={value!r} is not one of {allowed}")
            self.params[name] = str(value)
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
        }
        self.refs: dict[str, str] = {}  # logical id -> Ref value of a created resource
        self.attrs: dict[str, dict[str, str]] = {}  # logical id -> GetAtt values
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NoValue
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolved(name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not NoValue]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref" and isinstance(arg, str):
                return self.ref(arg)
            if fn == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if fn == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.resolve(arg)[0]
            if fn == "Fn::And":
                return all(self.resolve(arg))
            if fn == "Fn::Or":
                return any(self.resolve(arg))
            if fn == "Fn::GetAtt":
                logical, attr = arg
                try:
                    return self.attrs[logical][attr]
                except KeyError:
                    raise Unresolved(f"{logical}.{attr}") from None
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::Join":
                sep, items = arg
                return sep.join(str(i) for i in self.resolve(items))
            if fn == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if fn == "Fn::Split":
                sep, text = self.resolve(arg)
                return text.split(sep)
            if fn.startswith("Fn::"):
                raise Unresolved(fn)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NoValue:
                out[k] = r
        return out

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
        out, i = [], 0
        while i < len(text):
            if text.startswith("${!", i):
                out.append("${")
                i += 3
            elif text.startswith("${", i):
                j = text.index("}", i)
                name = text[i + 2:j]
                if name in extra:
                    out.append(str(extra[name]))
                elif "." in name and not name.startswith("AWS::"):
                    out.append(str(self.resolve({"Fn::GetAtt": name.split(".", 1)})))
                else:
                    out.append(str(self.ref(name)))
                i = j + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def resources(self) -> dict[str, dict]:
        """Resources whose Condition holds, in dependency order."""
        res = {k: v for k, v in self.template["Resources"].items()
               if "Condition" not in v or self.condition(v["Condition"])}
        order: list[str] = []

        def deps(node: Any) -> set[str]:
            found: set[str] = set()
            if isinstance(node, list):
                for n in node:
                    found |= deps(n)
            elif isinstance(node, dict):
                for k, v in node.items():
                    if k == "Ref" and isinstance(v, str):
                        found.add(v)
                    elif k == "Fn::GetAtt":
                        found.add(v[0])
                    elif k == "Fn::Sub":
                        text = v if isinstance(v, str) else v[0]
                        for part in text.split("${")[1:]:
                            found.add(part.split("}")[0].split(".")[0])
                    found |= deps(v)
            return found

        def visit(name: str, path: tuple = ()) -> None:
            if name in order or name not in res:
                return
            if name in path:
                raise SystemExit(f"template: dependency cycle through {name}")
            for d in sorted(deps(res[name].get("Properties", {}))):
                visit(d, path + (name,))
            order.append(name)

        for name in res:
            visit(name)
        return {name: res[name] for name in order}


# --------------------------------------------------------------------------- resources
#
# Each handler turns a resource's CloudFormation Properties into boto3 calls. CFN
# property names equal the API's parameter names except where RENAMES says;
# anything the API does not take (by botocore's own model) is reported and dropped.

RENAMES = {
    "AWS::DynamoDB::Table": {},
    "AWS::KMS::Key": {},  # KeyPolicy -> Policy (a JSON string) is done by hand
    "AWS::SecretsManager::Secret": {},
    "AWS::Cognito::UserPool": {"UserPoolName": "PoolName"},
    "AWS::Cognito::UserPoolClient": {},
    "AWS::S3::Bucket": {},
    "AWS::S3::BucketPolicy": {},
}


def call_params(client: Any, operation: str, rtype: str, logical: str, props: dict,
                handled: set[str]) -> dict:
    members = client.meta.service_model.operation_model(operation).input_shape.members
    out = {}
    for name, value in props.items():
        if name in handled:
            continue
        api_name = RENAMES[rtype].get(name, name)
        if api_name in members:
            out[api_name] = value
        else:
            log(f"{logical}: {operation} has no parameter for {name}; not emulated")
    return out


class Emulator:
    def __init__(self, endpoint: str, stack: Stack):
        self.endpoint = endpoint
        self.stack = stack
        self.created: dict[str, str] = {}  # resource type -> logical id (one each here)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key="test")

    def create_all(self) -> None:
        handlers = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::KMS::Key": self.kms_key,
            "AWS::KMS::Alias": self.kms_alias,
            "AWS::SecretsManager::Secret": self.secret,
            "AWS::Cognito::UserPool": self.user_pool,
            "AWS::Cognito::UserPoolClient": self.user_pool_client,
            "AWS::S3::Bucket": self.bucket,
            "AWS::S3::BucketPolicy": self.bucket_policy,
        }
        for logical, res in self.stack.resources().items():
            handler = handlers.get(res["Type"])
            if handler is None:
                continue  # functions, HTTP API, log groups: not emulated
            if res["Type"] in self.created:
                raise SystemExit(f"template has two {res['Type']}; emulator.py expects one")
            raw = dict(res.get("Properties", {}))
            if raw.pop("LambdaConfig", None) is not None:
                # The triggers are Lambda functions, which are not emulated
                # (moto would not invoke them either).
                log(f"{logical}: LambdaConfig (Lambda triggers) not emulated")
            props = self.stack.resolve(raw)
            handler(logical, props)
            self.created[res["Type"]] = logical
            log(f"created {logical} ({res['Type']}): {self.stack.refs[logical]}")

    def table(self, logical: str, props: dict) -> None:
        ddb = self.client("dynamodb")
        special = {"TableName", "SSESpecification", "StreamSpecification", "TimeToLiveSpecification",
                   "PointInTimeRecoverySpecification", "Tags"}
        params = call_params(ddb, "CreateTable", "AWS::DynamoDB::Table", logical, props, special)
        params["TableName"] = TABLE_NAME
        if "SSESpecification" in props:
            sse = dict(props["SSESpecification"])
            sse["Enabled"] = sse.pop("SSEEnabled")
            params["SSESpecification"] = sse
        if "StreamSpecification" in props:
            params["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        if "Tags" in props:
            params["Tags"] = props["Tags"]
        desc = ddb.create_table(**params)["TableDescription"]
        ddb.get_waiter("table_exists").wait(TableName=TABLE_NAME)
        if "TimeToLiveSpecification" in props:
            ddb.update_time_to_live(TableName=TABLE_NAME,
                                    TimeToLiveSpecification=props["TimeToLiveSpecification"])
        if "PointInTimeRecoverySpecification" in props:
            ddb.update_continuous_backups(
                TableName=TABLE_NAME,
                PointInTimeRecoverySpecification=props["PointInTimeRecoverySpecification"])
        self.stack.refs[logical] = TABLE_NAME
        self.stack.attrs[logical] = {"Arn": desc["TableArn"]}

    def kms_key(self, logical: str, props: dict) -> None:
        kms = self.client("kms")
        special = {"EnableKeyRotation", "RotationPeriodInDays", "Enabled", "PendingWindowInDays",
                   "KeyPolicy", "Tags"}
        params = call_params(kms, "CreateKey", "AWS::KMS::Key", logical, props, special)
        if "KeyPolicy" in props:
            params["Policy"] = json.dumps(props["KeyPolicy"])
        if "Tags" in props:
            params["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
        meta = kms.create_key(**params)["KeyMetadata"]
        if str(props.get("EnableKeyRotation", False)).lower() == "true":
            rotation = {}
            if "RotationPeriodInDays" in props:
                rotation["RotationPeriodInDays"] = int(props["RotationPeriodInDays"])
            kms.enable_key_rotation(KeyId=meta["KeyId"], **rotation)
        if str(props.get("Enabled", True)).lower() == "false":
            kms.disable_key(KeyId=meta["KeyId"])
        self.stack.refs[logical] = meta["KeyId"]
        self.stack.attrs[logical] = {"Arn": meta["Arn"], "KeyId": meta["KeyId"]}

    def kms_alias(self, logical: str, props: dict) -> None:
        self.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        self.stack.refs[logical] = props["AliasName"]

    def secret(self, logical: str, props: dict) -> None:
        sm = self.client("secretsmanager")
        special = {"Name", "GenerateSecretString", "SecretString", "ReplicaRegions"}
        params = call_params(sm, "CreateSecret", "AWS::SecretsManager::Secret", logical, props, special)
        params["Name"] = props.get("Name", f"keysrv-{STACK_NAME}-{logical}")
        if "SecretString" in props:
            params["SecretString"] = props["SecretString"]
        elif "GenerateSecretString" in props:
            params["SecretString"] = generate_secret_string(props["GenerateSecretString"])
        arn = sm.create_secret(**params)["ARN"]
        self.stack.refs[logical] = arn
        self.stack.attrs[logical] = {"Id": arn}

    def user_pool(self, logical: str, props: dict) -> None:
        idp = self.client("cognito-idp")
        params = call_params(idp, "CreateUserPool", "AWS::Cognito::UserPool", logical, props, set())
        pool = idp.create_user_pool(**params)["UserPool"]
        self.stack.refs[logical] = pool["Id"]
        self.stack.attrs[logical] = {"Arn": pool["Arn"], "ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"}

    def user_pool_client(self, logical: str, props: dict) -> None:
        idp = self.client("cognito-idp")
        params = call_params(idp, "CreateUserPoolClient", "AWS::Cognito::UserPoolClient", logical, props, set())
        # `keysrv token` signs in with USER_PASSWORD_AUTH (moto does not enforce the list anyway).
        flows = list(params.get("ExplicitAuthFlows", []))
        if "ALLOW_USER_PASSWORD_AUTH" not in flows:
            flows.append("ALLOW_USER_PASSWORD_AUTH")
        params["ExplicitAuthFlows"] = flows
        client = idp.create_user_pool_client(**params)["UserPoolClient"]
        self.stack.refs[logical] = client["ClientId"]
        self.stack.attrs[logical] = {"ClientId": client["ClientId"]}

    def bucket(self, logical: str, props: dict) -> None:
        """AWS::S3::Bucket: CreateBucket, then one Put* call per configuration the
        template sets. moto stores them; it checks no presigned signature or expiry."""
        s3 = self.client("s3")
        name = props.get("BucketName", FILES_BUCKET_NAME)
        s3.create_bucket(Bucket=name)  # us-east-1: no LocationConstraint
        for prop, value in props.items():
            if prop == "BucketName":
                continue
            elif prop == "BucketEncryption":
                rules = [{("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                          for k, v in rule.items()} for rule in value["ServerSideEncryptionConfiguration"]]
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
            elif prop == "PublicAccessBlockConfiguration":
                s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=value)
            elif prop == "OwnershipControls":
                s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=value)
            elif prop == "VersioningConfiguration":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=value)
            elif prop == "CorsConfiguration":
                names = {"Id": "ID", "ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
                rules = [{names.get(k, k): (int(v) if k == "MaxAge" else v) for k, v in rule.items()}
                         for rule in value["CorsRules"]]
                s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
            elif prop == "LifecycleConfiguration":
                s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
                    "Rules": [lifecycle_rule(logical, r) for r in value["Rules"]]})
            elif prop == "Tags":
                s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": value})
            else:
                log(f"{logical}: no S3 call for {prop}; not emulated")
        self.stack.refs[logical] = name
        self.stack.attrs[logical] = {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        }

    def bucket_policy(self, logical: str, props: dict) -> None:
        """Resolved (so a broken reference still fails `up`) but not put into moto:
        moto 5.2.5 answers 403 to every object request that a Deny statement with
        Principal "*" names, whether or not its Condition holds (a compliant SSE-KMS
        PUT over the emulator's plain HTTP included). Nothing it denies is checked
        here, so test those rules against AWS, not the emulator."""
        json.dumps(props["PolicyDocument"])
        log(f"{logical}: not applied (moto would deny every object request); not emulated")
        self.stack.refs[logical] = props["Bucket"]


def lifecycle_rule(logical: str, rule: dict) -> dict:
    """A CloudFormation lifecycle rule as PutBucketLifecycleConfiguration takes it
    (the parts template.yaml uses; anything else is reported and dropped)."""
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    for k, v in rule.items():
        if k == "Id":
            out["ID"] = v
        elif k == "AbortIncompleteMultipartUpload":
            out[k] = {"DaysAfterInitiation": int(v["DaysAfterInitiation"])}
        elif k == "ExpirationInDays":
            out["Expiration"] = {"Days": int(v)}
        elif k == "TagFilters":
            tags = [{"Key": t["Key"], "Value": t["Value"]} for t in v]
            out["Filter"] = {"Tag": tags[0]} if len(tags) == 1 else {"And": {"Tags": tags}}
        elif k not in ("Status", "Prefix"):
            log(f"{logical}: lifecycle rule property {k} not emulated")
    return out


def generate_secret_string(spec: dict) -> str:
    """Secrets Manager's GenerateSecretString, locally: the same character rules."""
    if "SecretStringTemplate" in spec or "GenerateStringKey" in spec:
        raise SystemExit("emulator.py: GenerateSecretString with a JSON template is not emulated")

    def flag(name: str) -> bool:
        return str(spec.get(name, False)).lower() == "true"

    chars = ""
    if not flag("ExcludeLowercase"):
        chars += string.ascii_lowercase
    if not flag("ExcludeUppercase"):
        chars += string.ascii_uppercase
    if not flag("ExcludeNumbers"):
        chars += string.digits
    if not flag("ExcludePunctuation"):
        chars += "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    if flag("IncludeSpace"):
        chars += " "
    excluded = set(spec.get("ExcludeCharacters", ""))
    chars = "".join(c for c in chars if c not in excluded)
    length = int(spec.get("PasswordLength", 32))
    if not chars:
        raise SystemExit("GenerateSecretString leaves no characters to choose from")
    return "".join(secrets.choice(chars) for _ in range(length))


# --------------------------------------------------------------------------- moto process


def moto_server_bin() -> Path:
    # The venv's bin dir: sys.executable is .venv/bin/python (not resolved: it may be a symlink).
    candidate = Path(sys.executable).parent / "moto_server"
    if not candidate.exists():
        raise SystemExit(f"{candidate} not found: install requirements-dev.txt into this venv")
    return candidate


def read_pid(state: Path) -> int | None:
    try:
        return int((state / "moto.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_our_moto(pid: int) -> bool:
    """True if pid is alive and is a moto_server (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True  # no /proc (not Linux): trust the pid file
    return b"moto_server" in cmdline or b"serve-moto" in cmdline


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the server will: connections of a previous run in TIME_WAIT do
        # not make the port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text()[-2000:]
            raise SystemExit(f"moto_server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"moto_server not ready at {url} after {timeout:.0f} s (log: {log_path})")


def stop(state: Path) -> bool:
    pid = read_pid(state)
    if pid is None:
        return False
    stopped = False
    if is_our_moto(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not is_our_moto(pid):
                break
            time.sleep(0.1)
        else:
            log(f"moto_server (pid {pid}) ignored SIGTERM for 10 s; sending SIGKILL")
            os.kill(pid, signal.SIGKILL)
        stopped = True
    (state / "moto.pid").unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------- commands


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


SIGNING_KEY_FILE = "cognito-signing-key.pem"


def write_signing_key(state: Path) -> Path:
    """Writes moto's Cognito token-signing key (one fixed RSA key, kid "dummy", shipped
    with moto as a private JWK) to DIR/cognito-signing-key.pem as PKCS#8 PEM (0600), so
    that tests can sign tokens the emulator's JWKS vouches for, with one claim wrong."""
    import base64
    import gzip
    import importlib.util

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("moto is not installed in this venv")
    jwk_path = Path(list(spec.submodule_search_locations)[0]) / "cognitoidp/resources/jwks-private.json.gz"
    with gzip.open(jwk_path, "rt") as f:
        jwk = json.load(f)

    def number(name: str) -> int:
        text = jwk[name]
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    n, e, d = number("n"), number("e"), number("d")
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    key = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q), iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    ).private_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = state / SIGNING_KEY_FILE
    write_private(path, pem)
    return path


def cmd_serve_moto(args: argparse.Namespace) -> None:
    """moto_server, one request at a time (what `up` runs). moto is not thread-safe:
    TransactWriteItems deep-copies the whole table without a lock (a concurrent write
    makes it fail: "dictionary changed size during iteration") and, when a transaction
    is cancelled, puts that copy back -- undoing every write other requests made in
    the meantime, in any partition. DynamoDB isolates transactions; serializing the
    emulator's requests does too (moto is single-threaded under its GIL anyway).

    TransactGetItems is allowed DynamoDB's 100 items (moto's own limit is the
    25 of before 2022).

    Also, moto keeps every model instance it ever creates (`instances_tracked`, for its
    dashboard), including the whole-table copy each TransactWriteItems makes and every
    Scan result: memory grows by megabytes per request and garbage collection stalls
    for seconds, longer than the SDK's timeouts. DynamoDB's models are not tracked here."""
    import threading

    import moto.dynamodb.models  # noqa: F401 -- defines the models untracked below
    import moto.server
    from moto.core.model_instances import model_data

    class Untracked(list):  # type: ignore[type-arg]
        def append(self, _instance: Any) -> None:
            pass

    for model in model_data["dynamodb"].values():
        model.instances_tracked = Untracked()  # type: ignore[attr-defined]

    # moto 5.2.5 still refuses a TransactGetItems of more than 25 items;
    # DynamoDB's limit has been 100 since September 2022, and keysrv reads
    # up to 100 items in one snapshot.
    import moto.dynamodb.responses
    moto.dynamodb.responses.TRANSACTION_MAX_ITEMS = 100  # type: ignore[attr-defined]

    lock = threading.Lock()
    dispatcher = moto.server.DomainDispatcherApplication

    class OneRequestAtATime(dispatcher):  # type: ignore[misc,valid-type]
        def __call__(self, environ: Any, start_response: Any) -> Any:
            with lock:
                return super().__call__(environ, start_response)

    moto.server.DomainDispatcherApplication = OneRequestAtATime  # type: ignore[misc]
    moto.server.main(["-H", args.host, "-p", str(args.port)])


def cmd_signing_key(args: argparse.Namespace) -> None:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    print(write_signing_key(state))


def cmd_up(args: argparse.Namespace) -> None:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    pid = read_pid(state)
    if pid is not None and is_our_moto(pid):
        raise SystemExit(f"an emulator from {state} is running (pid {pid}): "
                         f"`{Path(__file__).name} down --state-dir {args.state_dir}` first")
    if not port_free(args.port):
        raise SystemExit(f"{HOST}:{args.port} is in use")

    stack = Stack(load_template(), {**LOCAL_PARAMETERS, "WrappingMode": args.wrapping})

    log_path = state / "moto.log"
    with open(log_path, "ab") as logf:
        moto_server_bin()  # moto is installed in this venv
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve-moto", "--host", HOST, "--port", str(args.port)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this script; `down` stops it
        )
    (state / "moto.pid").write_text(f"{proc.pid}\n")
    endpoint = f"http://{HOST}:{args.port}"
    try:
        wait_ready(proc, f"{endpoint}/moto-api/", log_path)
        emu = Emulator(endpoint, stack)
        emu.create_all()
    except BaseException:
        stop(state)
        raise

    def ref_of(rtype: str) -> str:
        logical = emu.created.get(rtype)
        return stack.refs[logical] if logical else ""

    pool_id = ref_of("AWS::Cognito::UserPool")
    key_logical = emu.created["AWS::KMS::Key"]
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
        "KEYSRV_BACKEND": "aws",
        "KEYSRV_TABLE": ref_of("AWS::DynamoDB::Table"),
        "KEYSRV_WRAPPING": stack.params["WrappingMode"],
        "KEYSRV_KMS_KEY_ID": stack.attrs[key_logical]["Arn"],
        "KEYSRV_MASTER_KEY_SECRET_ID": ref_of("AWS::SecretsManager::Secret"),
        "KEYSRV_FILES_BUCKET": ref_of("AWS::S3::Bucket"),
        "KEYSRV_FILES_KMS_KEY_ID": stack.attrs[key_logical]["Arn"],
        "KEYSRV_FILE_MAX_BYTES": stack.params["FileMaxBytes"],
        "KEYSRV_FILE_URL_TTL_SECS": stack.params["FileUrlTtlSecs"],
        "KEYSRV_COGNITO_USER_POOL_ID": pool_id,
        "KEYSRV_COGNITO_CLIENT_ID": ref_of("AWS::Cognito::UserPoolClient"),
        # moto's tokens carry the real AWS issuer; their keys are served by moto.
        "KEYSRV_JWT_ISSUER": f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
        "KEYSRV_JWT_JWKS_URL": f"{endpoint}/{pool_id}/.well-known/jwks.json",
        "KEYSRV_JWT_AUDIENCE": ref_of("AWS::Cognito::UserPoolClient"),
        # Not read by keysrv: where tests find moto.log and cognito-signing-key.pem.
        "KEYSRV_EMULATOR_STATE_DIR": str(state),
    }
    write_signing_key(state)
    (state / "env").write_text("".join(f"{k}={shlex.quote(v) if v else ''}\n" for k, v in env.items()))
    (state / "env.json").write_text(json.dumps(env, indent=2) + "\n")
    # env.local.json with this run's values, for `sam local ... --env-vars DIR/sam-env.json`
    # (Docker Desktop; sam local overrides only the variables the template declares).
    declared = stack.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    sam_env = {**env, "AWS_ENDPOINT_URL": f"http://host.docker.internal:{args.port}"}
    (state / "sam-env.json").write_text(json.dumps(
        {"Parameters": {k: v for k, v in sam_env.items() if k in declared}}, indent=2) + "\n")
    log(f"moto_server pid {proc.pid} on {endpoint}, log {log_path}")
    print(state / "env")


def cmd_down(args: argparse.Namespace) -> None:
    state = Path(args.state_dir)
    if stop(state):
        log("moto_server stopped")
    else:
        log("no emulator running")


def cmd_token(args: argparse.Namespace) -> None:
    state = Path(args.state_dir)
    try:
        env = json.loads((state / "env.json").read_text())
    except FileNotFoundError:
        raise SystemExit(f"{state}/env.json not found: run `up` first") from None
    idp = boto3.client("cognito-idp", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    pool, client_id, jid = env["KEYSRV_COGNITO_USER_POOL_ID"], env["KEYSRV_COGNITO_CLIENT_ID"], args.jid

    pw_file = state / "passwords.json"
    passwords = json.loads(pw_file.read_text()) if pw_file.exists() else {}
    # Pool and passwords belong to one emulator run: a restarted emulator has a new pool.
    passwords = passwords if passwords.get("pool") == pool else {"pool": pool, "users": {}}
    users = passwords["users"]

    try:
        idp.admin_get_user(UserPoolId=pool, Username=jid)
        exists = True
    except ClientError as e:
        if e.response["Error"]["Code"] != "UserNotFoundException":
            raise
        exists = False
    if not exists:
        idp.admin_create_user(UserPoolId=pool, Username=jid, MessageAction="SUPPRESS")
    if not exists or jid not in users:
        # Meets any Cognito password policy: every character class, 40 characters.
        users[jid] = "Aa1!" + secrets.token_urlsafe(27)
        idp.admin_set_user_password(UserPoolId=pool, Username=jid, Password=users[jid], Permanent=True)
        write_private(pw_file, json.dumps(passwords, indent=2) + "\n")

    auth = idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters={"USERNAME": jid, "PASSWORD": users[jid]})
    print(auth["AuthenticationResult"]["AccessToken"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start moto and create the template's resources in it")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--state-dir", required=True)
    up.add_argument("--wrapping", choices=["kms", "secretsmanager"], default="kms")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the emulator started from --state-dir")
    down.add_argument("--state-dir", required=True)
    down.set_defaults(func=cmd_down)
    token = sub.add_parser("token", help="print a Cognito access token for JID (creates the user)")
    token.add_argument("--state-dir", required=True)
    token.add_argument("jid")
    token.set_defaults(func=cmd_token)
    serve = sub.add_parser("serve-moto", help="run moto_server serving one request at a time (`up` does)")
    serve.add_argument("--host", default=HOST)
    serve.add_argument("--port", type=int, required=True)
    serve.set_defaults(func=cmd_serve_moto)
    signing = sub.add_parser("signing-key",
                             help="write moto's Cognito signing key to DIR/cognito-signing-key.pem (PKCS#8)")
    signing.add_argument("--state-dir", required=True)
    signing.set_defaults(func=cmd_signing_key)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
