//! Credentials and TLS against real `docker-registry` processes: htpasswd basic auth fed from
//! a Docker config, `KILN_REGISTRY_AUTH` and a credential helper; TLS with a private CA; and
//! bearer tokens through an in-process token endpoint.

#[path = "support/registry_proxy.rs"]
mod registry_proxy;
#[path = "support/registry.rs"]
mod registry_support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kiln::diagnostic::Diagnose;
use kiln::oci::BlobStore;
use kiln::registry::{
    CredentialStore, Reference, RegistryClient, RegistryError, RegistryOptions, RequestError,
    TransportOptions,
};
use registry_proxy::{Action, FaultProxy};
use registry_support::{Flavor, TestImage, TestRegistry, build_image, write_script};

const USER: &str = "kiln";
const PASSWORD: &str = "s3cret-pw";
const APP: &[(&str, &[u8])] = &[("workspace/app.py", b"print('auth')\n")];

fn basic_registry() -> TestRegistry {
    TestRegistry::start(Flavor::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    })
}

fn client(
    credentials: CredentialStore,
    insecure: &[&str],
    extra_ca: Option<&Path>,
) -> RegistryClient {
    let mut options = RegistryOptions::with_credentials(credentials);
    options.transport = TransportOptions {
        extra_ca: extra_ca.map(Path::to_owned),
        insecure_registries: insecure.iter().map(|addr| addr.to_string()).collect(),
    };
    RegistryClient::new(options).unwrap()
}

fn image(dir: &tempfile::TempDir) -> (BlobStore, TestImage) {
    let store = BlobStore::for_layout(dir.path());
    let image = build_image(&store, &[APP]);
    (store, image)
}

fn push(
    client: &RegistryClient,
    target: &Reference,
    store: &BlobStore,
    image: &TestImage,
) -> Result<(), RegistryError> {
    client
        .push_image(
            target,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            store,
            None,
        )
        .map(|report| assert_eq!(report.manifest_digest, image.manifest_digest))
}

fn docker_config(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), json).unwrap();
    dir
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(" → ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn basic_auth_with_docker_config_works_and_is_refused_without_it() {
    let registry = basic_registry();
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image(&dir);
    let target = Reference::parse(&format!("{}/secure/app:1", registry.addr)).unwrap();

    // No credentials: a clear 401 naming the registry and the repository, with a hint.
    let anonymous = client(CredentialStore::anonymous(), &[&registry.addr], None);
    let error = push(&anonymous, &target, &store, &image).unwrap_err();
    assert!(
        matches!(
            error.request_error(),
            Some(RequestError::Unauthorized {
                had_credentials: false,
                ..
            })
        ),
        "{error:?}"
    );
    let text = chain(&error);
    assert!(
        text.contains(&registry.addr) && text.contains("secure/app"),
        "{text}"
    );
    let hint = error.hint().unwrap();
    assert!(
        hint.contains("docker login") && hint.contains("DOCKER_CONFIG"),
        "{hint}"
    );
    let error = anonymous.get_manifest(&target).unwrap_err();
    assert!(chain(&error).contains("secure/app:1"), "{error}");

    // Credentials in a Docker config (`auth` as base64 user:password).
    let auth = BASE64.encode(format!("{USER}:{PASSWORD}"));
    let config = docker_config(&format!(
        r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
        registry.addr
    ));
    let credentials = CredentialStore::from_parts(Some(config.path()), None).unwrap();
    let authed = client(credentials, &[&registry.addr], None);
    push(&authed, &target, &store, &image).unwrap();
    assert_eq!(
        authed.get_manifest(&target).unwrap().bytes,
        image.manifest_bytes
    );

    // Wrong password: refused, and the hint says the credentials were rejected.
    let config = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"username":"{USER}","password":"wrong"}}}}}}"#,
        registry.addr
    ));
    let wrong = client(
        CredentialStore::from_parts(Some(config.path()), None).unwrap(),
        &[&registry.addr],
        None,
    );
    let error = wrong.get_manifest(&target).unwrap_err();
    assert!(
        matches!(
            error.request_error(),
            Some(RequestError::Unauthorized {
                had_credentials: true,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(
        !format!("{error:?} {error} {}", chain(&error)).contains("wrong"),
        "never print secrets"
    );
}

#[test]
fn kiln_registry_auth_wins_over_the_docker_config() {
    let registry = basic_registry();
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image(&dir);
    let target = Reference::parse(&format!("{}/env/app:1", registry.addr)).unwrap();
    let broken = docker_config(&format!(
        r#"{{"auths":{{"{}":{{"username":"{USER}","password":"wrong"}}}}}}"#,
        registry.addr
    ));
    let header = format!("Basic {}", BASE64.encode(format!("{USER}:{PASSWORD}")));
    let env = serde_json::json!({ registry.addr.clone(): header }).to_string();
    let credentials = CredentialStore::from_parts(Some(broken.path()), Some(&env)).unwrap();
    assert!(
        !format!("{credentials:?}").contains(&header[6..]),
        "Debug must not show the header"
    );
    push(
        &client(credentials, &[&registry.addr], None),
        &target,
        &store,
        &image,
    )
    .unwrap();
}

#[test]
fn credential_helpers_supply_credentials() {
    let registry = basic_registry();
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image(&dir);
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls.log");
    // Answers only for our registry, like a real helper; logs what it was asked.
    write_script(
        &bin.path().join("docker-credential-test"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {calls}\n\
             if [ \"$server\" = \"{addr}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            calls = calls.display(),
            addr = registry.addr,
        ),
    );
    let path = std::env::join_paths(std::iter::once(bin.path().to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();

    for (name, config) in [
        (
            "credHelpers",
            format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, registry.addr),
        ),
        ("credsStore", r#"{"credsStore":"test"}"#.to_owned()),
    ] {
        let config_dir = docker_config(&config);
        let credentials = CredentialStore::from_parts(Some(config_dir.path()), None)
            .unwrap()
            .with_helper_path(path.clone());
        let target = Reference::parse(&format!(
            "{}/helper/{}:1",
            registry.addr,
            name.to_ascii_lowercase()
        ))
        .unwrap();
        push(
            &client(credentials, &[&registry.addr], None),
            &target,
            &store,
            &image,
        )
        .unwrap_or_else(|error| panic!("{name}: {}", chain(&error)));
    }
    let asked = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        asked.lines().collect::<Vec<_>>(),
        vec![registry.addr.as_str(); 2],
        "one helper call per client"
    );
}

#[test]
fn tls_registry_works_with_its_ca_and_fails_clearly_without() {
    let registry = TestRegistry::start(Flavor::Tls);
    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image(&dir);
    let target = Reference::parse(&format!("{}/tls/app:1", registry.addr)).unwrap();

    let untrusting = client(CredentialStore::anonymous(), &[], None);
    let error = untrusting.get_manifest(&target).unwrap_err();
    assert!(
        matches!(
            error.request_error(),
            Some(RequestError::Certificate { .. })
        ),
        "{error:?}"
    );
    assert!(chain(&error).contains(&registry.addr), "{}", chain(&error));
    assert!(
        error.hint().unwrap().contains("--registry-ca"),
        "{:?}",
        error.hint()
    );

    let trusting = client(
        CredentialStore::anonymous(),
        &[],
        registry.ca_path.as_deref(),
    );
    push(&trusting, &target, &store, &image).unwrap();
    assert_eq!(
        trusting.get_manifest(&target).unwrap().digest,
        image.manifest_digest
    );
}

#[test]
fn plain_http_registry_needs_to_be_named_insecure() {
    let registry = TestRegistry::start(Flavor::Plain);
    let target = Reference::parse(&format!("{}/plain/app:1", registry.addr)).unwrap();
    let error = client(CredentialStore::anonymous(), &[], None)
        .get_manifest(&target)
        .unwrap_err();
    let hint = error.hint().unwrap_or_default();
    assert!(hint.contains("--insecure-registry"), "{error:?} / {hint}");
}

#[test]
fn bearer_tokens_are_scoped_per_repository_and_reused() {
    let registry = TestRegistry::start(Flavor::Plain);
    let token_requests: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let proxy_addr: Arc<Mutex<String>> = Arc::default();
    let proxy = {
        let token_requests = Arc::clone(&token_requests);
        let proxy_addr = Arc::clone(&proxy_addr);
        FaultProxy::start(&registry.addr, move |request| {
            if request.path() == "/token" {
                assert_eq!(request.query("service").as_deref(), Some("kiln-test"));
                let mut scopes = request.query_all("scope");
                scopes.sort();
                let mut all = token_requests.lock().unwrap();
                all.push(scopes.clone());
                let token = format!("tok{}:{}", all.len(), scopes.join(" "));
                return Action::Respond {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: serde_json::to_vec(
                        &serde_json::json!({"token": token, "expires_in": 300}),
                    )
                    .unwrap(),
                };
            }
            // Grant a request only with a token whose scopes cover its repository.
            let repository = request
                .path()
                .trim_start_matches("/v2/")
                .split("/blobs/")
                .next()
                .unwrap_or_default();
            let repository = repository
                .split("/manifests/")
                .next()
                .unwrap_or_default()
                .to_owned();
            let granted = request
                .header("Authorization")
                .and_then(|value| value.strip_prefix("Bearer "))
                .is_some_and(|token| token.contains(&format!("repository:{repository}:")));
            let from_granted = request.query("from").is_none_or(|from| {
                request
                    .header("Authorization")
                    .is_some_and(|value| value.contains(&format!("repository:{from}:pull")))
            });
            if granted && from_granted {
                Action::Forward
            } else {
                let realm = format!("http://{}/token", proxy_addr.lock().unwrap());
                Action::Respond {
                    status: 401,
                    headers: vec![(
                        "WWW-Authenticate".into(),
                        format!(r#"Bearer realm="{realm}",service="kiln-test",scope="repository:{repository}:pull""#),
                    )],
                    body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
                }
            }
        })
    };
    *proxy_addr.lock().unwrap() = proxy.addr.clone();

    let dir = tempfile::tempdir().unwrap();
    let (store, image) = image(&dir);
    let client = client(CredentialStore::anonymous(), &[&proxy.addr], None);
    let first = Reference::parse(&format!("{}/team/app:1", proxy.addr)).unwrap();
    push(&client, &first, &store, &image).unwrap();
    let second = Reference::parse(&format!("{}/team/other:1", proxy.addr)).unwrap();
    let report = client
        .push_image(
            &second,
            &image.manifest_bytes,
            &image.media_type,
            &image.blobs,
            &store,
            Some("team/app"),
        )
        .unwrap();
    assert_eq!(report.mounted.len(), image.blobs.len());
    let pulled = client
        .pull_image(
            &first,
            &BlobStore::for_layout(tempfile::tempdir().unwrap().path()),
        )
        .unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);

    let requests = token_requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![
            vec!["repository:team/app:pull,push".to_owned()],
            vec![
                "repository:team/app:pull".to_owned(),
                "repository:team/other:pull,push".to_owned()
            ],
            vec!["repository:team/app:pull".to_owned()],
        ],
        "one token per scope set, reused for every request of an operation"
    );
    let requests_seen = proxy.seen().len();
    assert!(
        requests_seen > 3 * 3,
        "tokens served many requests: {requests_seen}"
    );
}
