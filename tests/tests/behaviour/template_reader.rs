//! The template reader the parity tests share (keysrv_tests::template).

use keysrv_tests::serde_json::json;
use keysrv_tests::template::*;

#[test]
fn short_form_intrinsics_become_long_form() {
    let v =
        parse("a: !Ref X\nb: !GetAtt T.Arn\nc: !If [C, !Sub 'x-${AWS::Region}', !Ref AWS::NoValue]\nd: [1, true, ~]\n")
            .unwrap();
    assert_eq!(
        v,
        json!({
            "a": {"Ref": "X"},
            "b": {"Fn::GetAtt": ["T", "Arn"]},
            "c": {"Fn::If": ["C", {"Fn::Sub": "x-${AWS::Region}"}, {"Ref": "AWS::NoValue"}]},
            "d": [1, true, null],
        })
    );
    assert_eq!(resolve_ifs(&v["c"], &|_| false), None);
    assert_eq!(resolve_ifs(&v, &|c| c == "C").unwrap()["c"], json!({"Fn::Sub": "x-${AWS::Region}"}));
    assert!(parse("a: !Nonsense 1\n").is_err());
}
