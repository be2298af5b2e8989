//! The harness's own parts that can be checked without a server: the fault
//! proxy names S3 requests by their operation.

use http::{HeaderMap, HeaderValue, Method};
use keysrv_tests::fault_proxy::target_of;

fn target(method: Method, uri: &str, headers: &[(&'static str, &str)]) -> String {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    target_of(&method, &uri.parse().unwrap(), &map)
}

const AUTH: (&str, &str) = (
    "authorization",
    "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
);

#[test]
fn s3_requests_are_named_by_operation() {
    let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20250101%2Fus-east-1%2Fs3%2Faws4_request\
                     &X-Amz-Date=20250101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    assert_eq!(target(Method::POST, "/files?delete", &[AUTH]), "S3.DeleteObjects");
    assert_eq!(target(Method::POST, "/files?delete=&x-id=DeleteObjects", &[AUTH]), "S3.DeleteObjects");
    assert_eq!(target(Method::PUT, "/files/abc?x-id=PutObject", &[AUTH]), "S3.PutObject");
    assert_eq!(target(Method::PUT, &format!("/files/abc?x-id=PutObject&{presigned}"), &[]), "S3.PutObject");
    assert_eq!(target(Method::GET, &format!("/files/abc?x-id=GetObject&{presigned}"), &[]), "S3.GetObject");
    assert_eq!(target(Method::GET, "/files/abc", &[AUTH]), "S3.GetObject");
    assert_eq!(target(Method::HEAD, "/files/abc", &[AUTH]), "S3.HeadObject");
    assert_eq!(target(Method::GET, "/files?list-type=2&prefix=a", &[AUTH]), "S3.ListObjectsV2");
    assert_eq!(target(Method::DELETE, "/files/abc?x-id=DeleteObject", &[AUTH]), "S3.DeleteObject");
    assert_eq!(target(Method::PUT, "/files/abc", &[AUTH, ("x-amz-copy-source", "files/x")]), "S3.CopyObject");
    assert_eq!(target(Method::GET, "/files?acl", &[AUTH]), "S3.Unknown(GET bucket?acl)");
    // Not signed for S3: the other services' targets, or nothing.
    assert_eq!(target(Method::POST, "/", &[("x-amz-target", "TrentService.Decrypt")]), "TrentService.Decrypt");
    assert_eq!(target(Method::GET, "/pool/.well-known/jwks.json", &[]), "");
}
