//! The Node buildpack against real npm, Yarn 1 and pnpm (from the npm registry), through the
//! library with a stub stack offering bookworm's Node 18: what lands in which layer, how the
//! app reaches it, what is reused, which start command is chosen, and which apps are refused.

mod node_support;
mod support;

use std::path::Path;

use kiln::buildpack::{EnvAction, LayerContent, LayerState};
use kiln::diagnostic::ErrorClass;
use node_support::{
    BOOKWORM_NODEJS, Harness, StubStack, copy_of, fixture, link_target, restored, sample,
};

#[test]
fn sample_dependencies_live_in_a_linked_launch_layer_that_is_reused() {
    let harness = Harness::new();
    let app = copy_of(&sample());
    let built = harness.build_ok(app.path());

    let modules = built.layer("modules");
    assert!(modules.types.launch && modules.types.cache);
    assert!(
        built
            .layer_dir("modules")
            .join("node_modules/express/package.json")
            .is_file()
    );
    assert_eq!(
        link_target(&built.app_dir.join("node_modules")),
        "/layers/kiln_node/modules/node_modules",
        "the app layer holds a link, not a second copy of the dependencies"
    );
    assert!(modules.env.iter().any(|change| change.name == "PATH"
        && change.action == EnvAction::Prepend
        && change.value == "/layers/kiln_node/modules/node_modules/.bin"));
    assert!(
        matches!(&built.layer("nodejs").content, LayerContent::Root(Some(entries)) if entries.contains("usr/bin/node"))
    );
    assert!(
        built
            .layer("nodejs")
            .env
            .iter()
            .any(|change| change.name == "NODE_ENV" && change.value == "production")
    );
    assert!(
        !built.layer("npm-cache").types.launch,
        "the download cache stays out of the image"
    );
    assert_eq!(built.entrypoint(), ["node", "server.js"]);
    assert!(
        built.logged("$ npm ci --omit=dev"),
        "no devDependencies: production install straight away"
    );
    harness.commit(built);

    let again = harness.build_ok(app.path());
    assert!(restored(again.layer("modules")));
    assert!(again.logged("reusing node_modules"));
    assert!(
        !again.logged("$ npm"),
        "nothing is installed when the lockfile is unchanged:\n{:#?}",
        again.log
    );
    assert_eq!(
        link_target(&again.app_dir.join("node_modules")),
        "/layers/kiln_node/modules/node_modules"
    );
    harness.commit(again);

    let lockfile = app.path().join("package-lock.json");
    let mut text = std::fs::read_to_string(&lockfile).unwrap();
    text.push('\n');
    std::fs::write(&lockfile, text).unwrap();
    let changed = harness.build_ok(app.path());
    match &changed.layer("modules").state {
        LayerState::Empty { reasons } => assert_eq!(reasons, &["lockfile changed"]),
        LayerState::Restored => panic!("a lockfile change must reinstall"),
    }
    assert!(changed.logged("$ npm ci"));
}

#[test]
fn another_stack_node_major_rebuilds_dependencies() {
    let mut harness = Harness::new();
    let app = fixture("node_lockfile_v1");
    let built = harness.build_ok(&app);
    harness.commit(built);
    harness.stack = Some(StubStack {
        nodejs: "20.19.2+dfsg-1",
    });
    let rebuilt = harness.build_ok(&app);
    match &rebuilt.layer("modules").state {
        LayerState::Empty { reasons } => {
            assert!(reasons.contains(&"node 18 → 20".to_owned()), "{reasons:?}")
        }
        LayerState::Restored => panic!("a new Node major must reinstall"),
    }
}

#[test]
fn no_lockfile_installs_with_a_warning_and_writes_no_lockfile() {
    let harness = Harness::new();
    let built = harness.build_ok(&fixture("node_lockfile_missing"));
    assert!(built.logged("warning: no lockfile"), "{:#?}", built.log);
    assert!(built.logged("$ npm install --no-package-lock"));
    assert!(
        built
            .layer_dir("modules")
            .join("node_modules/ms/package.json")
            .is_file()
    );
    assert!(
        !built.app_dir.join("package-lock.json").exists(),
        "the image gets no lockfile the app did not have"
    );
}

#[test]
fn lockfile_v1_installs_with_npm_ci() {
    let harness = Harness::new();
    let built = harness.build_ok(&fixture("node_lockfile_v1"));
    assert!(built.logged("$ npm ci"));
    assert!(
        built
            .layer_dir("modules")
            .join("node_modules/ms/package.json")
            .is_file()
    );
}

#[test]
fn workspaces_keep_their_own_node_modules_in_the_layer() {
    let harness = Harness::new();
    let built = harness.build_ok(&fixture("node_workspaces"));
    let layer = built.layer_dir("modules");
    let version = |path: &Path| -> String {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("package.json")).unwrap()).unwrap();
        manifest["version"].as_str().unwrap().to_owned()
    };
    assert_eq!(version(&layer.join("node_modules/ms")), "2.0.0");
    assert_eq!(
        version(&layer.join("packages/greeting/node_modules/ms")),
        "2.1.3"
    );
    assert_eq!(
        link_target(&layer.join("node_modules/greeting")),
        "/workspace/packages/greeting",
        "workspace links must point at the app, wherever the layer sits"
    );
    assert_eq!(
        link_target(&built.app_dir.join("packages/greeting/node_modules")),
        "/layers/kiln_node/modules/packages/greeting/node_modules"
    );
    assert!(built.app_dir.join("packages/greeting/index.js").is_file());
}

#[test]
fn yarn_v1_project_is_installed_by_the_yarn_it_names() {
    let harness = Harness::new();
    let built = harness.build_ok(&fixture("node_yarn_v1"));
    assert!(
        built.logged("using yarn 1.22.22") || built.logged("yarn 1.22.22"),
        "{:#?}",
        built.log
    );
    assert!(built.logged("--frozen-lockfile"));
    assert!(
        built
            .layer_dir("modules")
            .join("node_modules/ms/package.json")
            .is_file()
    );
    if built.has_layer("yarn") {
        assert!(
            !built.layer("yarn").types.launch,
            "the tool stays out of the image"
        );
    }
}

#[test]
fn pnpm_project_is_installed_by_the_pnpm_it_names() {
    let harness = Harness::new();
    let built = harness.build_ok(&fixture("node_pnpm"));
    assert!(built.logged("pnpm 9.15.9"), "{:#?}", built.log);
    let layer = built.layer_dir("modules");
    assert!(layer.join("node_modules/.pnpm").is_dir());
    assert!(
        layer.join("node_modules/ms/package.json").is_file(),
        "pnpm's links resolve inside the layer"
    );
}

#[test]
fn build_script_runs_with_dev_dependencies_which_are_then_pruned_and_cached_apart() {
    let harness = Harness::new();
    let app = copy_of(&fixture("node_build_script"));
    let built = harness.build_ok(app.path());
    let message = std::fs::read_to_string(built.app_dir.join("dist/message.txt")).unwrap();
    assert!(
        message.contains("1m"),
        "the build script used the devDependency: {message}"
    );
    assert!(
        !built.layer_dir("modules").join("node_modules/ms").exists(),
        "devDependencies are pruned from the image"
    );
    assert!(
        built
            .layer_dir("modules-dev")
            .join("node_modules/ms")
            .is_dir()
    );
    assert!(!built.layer("modules-dev").types.launch);
    harness.commit(built);

    // A source change reruns the build with the cached devDependencies and installs nothing.
    std::fs::write(
        app.path().join("build.js"),
        std::fs::read_to_string(app.path().join("build.js"))
            .unwrap()
            .replace("built by", "rebuilt by"),
    )
    .unwrap();
    let again = harness.build_ok(app.path());
    assert!(restored(again.layer("modules")) && restored(again.layer("modules-dev")));
    assert!(!again.logged("$ npm ci"), "{:#?}", again.log);
    assert!(again.logged("$ npm run build"));
    let message = std::fs::read_to_string(again.app_dir.join("dist/message.txt")).unwrap();
    assert!(message.starts_with("rebuilt by"), "{message}");
    assert!(
        again
            .layer_dir("modules-dev")
            .join("node_modules/ms")
            .is_dir(),
        "the cached tree went back to the cache"
    );
}

#[test]
fn start_command_inference() {
    let harness = Harness::new();
    let shell = harness.build_ok(&fixture("node_start_shell"));
    assert_eq!(
        shell.entrypoint(),
        [
            "/bin/sh",
            "-c",
            "GREETING=\"hello from a shell start script\" node server.js"
        ]
    );
    assert!(
        !shell.has_layer("modules"),
        "nothing to install, no dependency layer"
    );
    assert_eq!(
        harness.build_ok(&fixture("node_main_only")).entrypoint(),
        ["node", "app.js"]
    );
    assert_eq!(
        harness
            .build_ok(&fixture("node_server_js_only"))
            .entrypoint(),
        ["node", "server.js"]
    );
}

#[test]
fn procfile_supplies_the_processes() {
    let harness = Harness::new();
    let app = copy_of(&fixture("node_server_js_only"));
    std::fs::write(
        app.path().join("Procfile"),
        "web: node server.js --from-procfile\n",
    )
    .unwrap();
    let built = harness.build_ok(app.path());
    assert!(
        built.result.processes.is_empty(),
        "the Procfile buildpack contributes them"
    );
    assert!(built.logged("processes come from the Procfile"));
}

#[test]
fn no_start_command_is_a_user_error() {
    let harness = Harness::new();
    let app = node_support::copy_of(&fixture("node_main_only"));
    std::fs::remove_file(app.path().join("app.js")).unwrap();
    let (text, hint) = harness.build_err(app.path());
    assert!(text.contains("no start command"), "{text}");
    assert!(hint.unwrap().contains("scripts.start"));
}

#[test]
fn lockfile_out_of_sync_names_the_dependency() {
    let harness = Harness::new();
    let (text, hint) = harness.build_err(&fixture("node_lockfile_out_of_sync"));
    assert!(
        text.contains("out of sync") && text.contains("ms@^2.1.3") && text.contains("ms@2.0.0"),
        "{text}"
    );
    assert_eq!(
        hint.as_deref(),
        Some("run `npm install` and commit the updated package-lock.json")
    );
}

#[test]
fn unsatisfiable_engines_lists_what_the_stack_offers() {
    let harness = Harness::new();
    let (text, hint) = harness.build_err(&fixture("node_engines_unsatisfiable"));
    assert!(
        text.contains("`>=22`") && text.contains("Node 18.19.0") && text.contains(BOOKWORM_NODEJS),
        "{text}"
    );
    assert!(hint.unwrap().contains("exactly one Node, 18.19.0"));
}

#[test]
fn without_a_package_stack_the_build_says_so() {
    let mut harness = Harness::new();
    harness.stack = None;
    let (text, hint) = harness.build_err(&sample());
    assert!(text.contains("no package stack"), "{text}");
    assert!(hint.unwrap().contains("default Debian run image"));
}

/// A local `file:` dependency carrying an addon that registers the pre-N-API way, as node-gyp
/// output for this machine's Node does.
fn app_with_native_addon(addon_bytes: &[u8]) -> tempfile::TempDir {
    let app = tempfile::tempdir().unwrap();
    let write = |path: &str, bytes: &[u8]| {
        let path = app.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write(
        "package.json",
        br#"{"name":"native-app","version":"1.0.0","scripts":{"start":"node server.js"},"dependencies":{"addon":"file:./addon"}}"#,
    );
    write("server.js", b"require('addon');\n");
    write(
        "addon/package.json",
        br#"{"name":"addon","version":"1.0.0","main":"build/Release/addon.node"}"#,
    );
    write("addon/build/Release/addon.node", addon_bytes);
    app
}

#[test]
fn native_addons_for_another_node_abi_stop_the_build() {
    let harness = Harness::new();
    let host_major: u64 = String::from_utf8(
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim_start_matches('v')
    .split('.')
    .next()
    .unwrap()
    .parse()
    .unwrap();
    let abi_specific =
        app_with_native_addon(b"\x7fELF node_module_register napi_register_module_v1");
    if host_major != 18 {
        let (text, hint) = harness.build_err(abi_specific.path());
        assert!(
            text.contains("native addons") && text.contains("addon/build/Release/addon.node"),
            "{text}"
        );
        assert!(hint.unwrap().contains("Node 18"));
    }
    // N-API addons load on any Node, so they pass.
    let node_api = app_with_native_addon(b"\x7fELF napi_register_module_v1");
    harness.build_ok(node_api.path());
}

#[test]
fn failures_are_user_errors() {
    let harness = Harness::new();
    let app = copy_of(&fixture("node_build_script"));
    std::fs::write(app.path().join("build.js"), "process.exit(7);\n").unwrap();
    match harness.build(app.path()) {
        Ok(_) => panic!("a failing build script must fail the build"),
        Err((failure, _)) => {
            assert_eq!(failure.class(), ErrorClass::User);
            assert!(
                failure.to_string().contains("the `build` script failed"),
                "{failure}"
            );
        }
    }
}

#[test]
fn yarn_and_pnpm_prune_dev_dependencies_after_the_build_script() {
    let harness = Harness::new();
    for fixture_name in ["node_yarn_prune", "node_pnpm_prune"] {
        let built = harness.build_ok(&fixture(fixture_name));
        let checked = std::fs::read_to_string(built.app_dir.join("dist/checked.txt")).unwrap();
        assert_eq!(checked, "is-number(42) = true\n", "{fixture_name}");
        let layer = built.layer_dir("modules");
        assert!(
            layer.join("node_modules/ms/package.json").is_file(),
            "{fixture_name}"
        );
        assert!(
            !layer.join("node_modules/is-number").exists(),
            "{fixture_name}: devDependencies are pruned"
        );
        assert!(
            !layer.join("node_modules/.modules.yaml").exists(),
            "{fixture_name}: no package-manager state in the image"
        );
    }
}
