//! How the app starts, inferred the way its authors would start it: a Procfile `web` wins;
//! then an ASGI framework under uvicorn, a WSGI framework under gunicorn, a Streamlit app,
//! and finally `python3 main.py` / `python3 app.py`.

use std::collections::BTreeSet;

use super::requirements::normalize_name;
use crate::buildpack::ProcessType;
use crate::source::SourceTree;

/// The app files start inference looks at.
pub trait AppFiles {
    /// A file's text, `None` when it is missing or excluded.
    fn read(&self, path: &str) -> Option<String>;
    /// Names of the app's top-level directories, sorted.
    fn directories(&self) -> Vec<String>;
}

impl AppFiles for SourceTree {
    fn read(&self, path: &str) -> Option<String> {
        self.read_to_string(path).ok().flatten()
    }

    fn directories(&self) -> Vec<String> {
        let Ok(entries) = fs_err::read_dir(self.root()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| self.is_included(std::path::Path::new(name), true))
            .collect();
        names.sort();
        names
    }
}

/// ASGI frameworks (normalized distribution name, display name), served by uvicorn.
const ASGI_FRAMEWORKS: &[(&str, &str)] = &[
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("python-fasthtml", "FastHTML"),
    ("quart", "Quart"),
    ("litestar", "Litestar"),
];
/// WSGI frameworks, served by gunicorn.
const WSGI_FRAMEWORKS: &[(&str, &str)] = &[
    ("flask", "Flask"),
    ("django", "Django"),
    ("bottle", "Bottle"),
    ("pyramid", "Pyramid"),
    ("falcon", "Falcon"),
];
/// Where apps define their application object, in the order users expect them to win.
const APP_MODULES: &[&str] = &[
    "main.py",
    "app.py",
    "application.py",
    "server.py",
    "api.py",
    "wsgi.py",
    "asgi.py",
    "app/__init__.py",
];
/// Where Streamlit apps usually live.
const STREAMLIT_SCRIPTS: &[&str] = &["streamlit_app.py", "app.py", "main.py", "Home.py"];
/// Plain scripts run as they are.
const SCRIPTS: &[&str] = &["main.py", "app.py"];

/// A package the start command needs that the app does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddedServer {
    /// The ASGI server.
    Uvicorn,
    /// The WSGI server.
    Gunicorn,
}

impl AddedServer {
    /// The requirement added to the install.
    pub fn requirement(self) -> &'static str {
        match self {
            AddedServer::Uvicorn => "uvicorn",
            AddedServer::Gunicorn => "gunicorn",
        }
    }
}

/// How the app starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The Procfile's `web` process (the Procfile buildpack supplies it).
    Procfile,
    /// A command this buildpack supplies as the default `web` process.
    Command {
        /// The command line (`$PORT` is expanded by `/bin/sh` at start).
        line: String,
        /// Why this command.
        reason: String,
        /// A server added to the install because the app does not list it.
        adds: Option<AddedServer>,
    },
    /// Nothing to start.
    Unknown,
}

/// Infer the start command from the app's files and its normalized requirement names.
pub fn infer(files: &dyn AppFiles, names: &BTreeSet<String>) -> Start {
    if procfile_defines_web(files) {
        return Start::Procfile;
    }
    let listed = |name: &str| names.contains(&normalize_name(name));
    if let Some((_, framework)) = ASGI_FRAMEWORKS.iter().find(|(name, _)| listed(name))
        && let Some(target) = find_app_object(files)
    {
        let adds = (!listed("uvicorn")).then_some(AddedServer::Uvicorn);
        let (target_arg, target_text) = if target.factory {
            (
                format!("--factory {}:{}", target.module, target.object),
                format!("factory `{}`", target.object),
            )
        } else {
            (
                format!("{}:{}", target.module, target.object),
                format!("`{}`", target.object),
            )
        };
        return Start::Command {
            line: format!("python3 -m uvicorn {target_arg} --host 0.0.0.0 --port $PORT"),
            reason: format!("{framework} app {target_text} in {}", target.file),
            adds,
        };
    }
    if let Some((name, framework)) = WSGI_FRAMEWORKS.iter().find(|(name, _)| listed(name)) {
        let target = match *name {
            "django" => find_django_wsgi(files).or_else(|| find_app_object(files)),
            _ => find_app_object(files),
        };
        if let Some(target) = target {
            let adds = (!listed("gunicorn")).then_some(AddedServer::Gunicorn);
            let call = if target.factory { "()" } else { "" };
            let what = if target.factory { "factory" } else { "app" };
            return Start::Command {
                line: format!(
                    "python3 -m gunicorn --bind 0.0.0.0:$PORT {}:{}{call}",
                    target.module, target.object
                ),
                reason: format!("{framework} {what} `{}` in {}", target.object, target.file),
                adds,
            };
        }
    }
    if listed("streamlit")
        && let Some(script) = find_streamlit_script(files)
    {
        return Start::Command {
            line: format!(
                "python3 -m streamlit run {script} --server.port $PORT --server.address 0.0.0.0 --server.headless true"
            ),
            reason: format!("Streamlit app {script}"),
            adds: None,
        };
    }
    if let Some(script) = SCRIPTS.iter().find(|script| files.read(script).is_some()) {
        return Start::Command {
            line: format!("python3 {script}"),
            reason: format!("found {script}"),
            adds: None,
        };
    }
    Start::Unknown
}

fn procfile_defines_web(files: &dyn AppFiles) -> bool {
    files
        .read("Procfile")
        .and_then(|text| crate::buildpacks::procfile::parse_procfile(&text).ok())
        .is_some_and(|processes| {
            processes
                .iter()
                .any(|process| process.r#type == ProcessType::web())
        })
}

/// Where the application object lives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AppTarget {
    file: String,
    module: String,
    object: String,
    factory: bool,
}

/// The first module (in [`APP_MODULES`] order) defining `app` or `application` at module
/// level, else a `create_app` factory.
fn find_app_object(files: &dyn AppFiles) -> Option<AppTarget> {
    let modules: Vec<(&str, String)> = APP_MODULES
        .iter()
        .filter_map(|file| files.read(file).map(|text| (*file, text)))
        .collect();
    let target = |file: &str, object: &str, factory: bool| AppTarget {
        file: file.to_owned(),
        module: module_name(file),
        object: object.to_owned(),
        factory,
    };
    for (file, text) in &modules {
        for object in ["app", "application"] {
            if assigns_at_module_level(text, object) {
                return Some(target(file, object, false));
            }
        }
    }
    modules
        .iter()
        .find(|(_, text)| text.lines().any(|line| line.starts_with("def create_app(")))
        .map(|(file, _)| target(file, "create_app", true))
}

/// `main.py` → `main`, `app/__init__.py` → `app`, `mysite/wsgi.py` → `mysite.wsgi`.
fn module_name(file: &str) -> String {
    let without = file.trim_end_matches(".py").trim_end_matches("/__init__");
    without.replace('/', ".")
}

/// Whether a line at column 0 binds `name`: `app = …`, `app: FastAPI = …`, `app, rt = …`.
fn assigns_at_module_level(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let Some(rest) = line.strip_prefix(name) else {
            return false;
        };
        let rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('=') {
            return !after.starts_with('=');
        }
        if let Some(annotated) = rest.strip_prefix(':') {
            return annotated.contains('=') && !annotated.contains("==");
        }
        rest.starts_with(',') && rest.contains('=')
    })
}

/// Django's `<project>/wsgi.py`: the project named in manage.py's settings module first,
/// else the only directory with a wsgi.py.
fn find_django_wsgi(files: &dyn AppFiles) -> Option<AppTarget> {
    let manage = files.read("manage.py");
    let settings_project = manage.as_deref().and_then(|text| {
        let start = text.find("DJANGO_SETTINGS_MODULE")?;
        let after = &text[start..];
        let quoted = after.split(['"', '\'']).nth(2)?;
        quoted.split('.').next().map(str::to_owned)
    });
    let with_wsgi: Vec<String> = files
        .directories()
        .into_iter()
        .filter(|dir| files.read(&format!("{dir}/wsgi.py")).is_some())
        .collect();
    let project = match settings_project {
        Some(project) if with_wsgi.contains(&project) => project,
        _ if with_wsgi.len() == 1 => with_wsgi[0].clone(),
        _ => return None,
    };
    let file = format!("{project}/wsgi.py");
    Some(AppTarget {
        module: module_name(&file),
        file,
        object: "application".to_owned(),
        factory: false,
    })
}

/// The first usual Streamlit script that imports streamlit, else the first that exists.
fn find_streamlit_script(files: &dyn AppFiles) -> Option<&'static str> {
    let existing: Vec<(&'static str, String)> = STREAMLIT_SCRIPTS
        .iter()
        .filter_map(|script| files.read(script).map(|text| (*script, text)))
        .collect();
    existing
        .iter()
        .find(|(_, text)| text.contains("import streamlit") || text.contains("from streamlit"))
        .or(existing.first())
        .map(|(script, _)| *script)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Files(BTreeMap<&'static str, &'static str>);

    impl AppFiles for Files {
        fn read(&self, path: &str) -> Option<String> {
            self.0.get(path).map(|text| (*text).to_owned())
        }

        fn directories(&self) -> Vec<String> {
            let mut dirs: Vec<String> = self
                .0
                .keys()
                .filter_map(|path| path.split_once('/').map(|(dir, _)| dir.to_owned()))
                .collect();
            dirs.dedup();
            dirs
        }
    }

    fn infer_for(files: &[(&'static str, &'static str)], names: &[&str]) -> Start {
        let names = names
            .iter()
            .filter_map(|line| super::super::requirements::requirement_name(line))
            .collect();
        infer(&Files(files.iter().copied().collect()), &names)
    }

    fn line(start: &Start) -> &str {
        match start {
            Start::Command { line, .. } => line,
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[test]
    fn procfile_web_wins_and_adds_nothing() {
        let start = infer_for(
            &[
                ("Procfile", "web: python3 serve.py\n"),
                ("app.py", "app = Flask(__name__)"),
            ],
            &["flask"],
        );
        assert_eq!(start, Start::Procfile);
        // A Procfile without `web` does not decide the web process.
        let start = infer_for(
            &[
                ("Procfile", "worker: python3 w.py\n"),
                ("app.py", "app = Flask(__name__)"),
            ],
            &["flask"],
        );
        assert!(matches!(start, Start::Command { .. }));
    }

    #[test]
    fn fastapi_runs_under_uvicorn_added_when_missing() {
        let start = infer_for(
            &[("main.py", "from fastapi import FastAPI\napp = FastAPI()\n")],
            &["fastapi"],
        );
        assert_eq!(
            line(&start),
            "python3 -m uvicorn main:app --host 0.0.0.0 --port $PORT"
        );
        assert!(matches!(
            start,
            Start::Command {
                adds: Some(AddedServer::Uvicorn),
                ..
            }
        ));
        let listed = infer_for(
            &[("main.py", "app = FastAPI()\n")],
            &["fastapi", "uvicorn[standard]"],
        );
        assert!(matches!(listed, Start::Command { adds: None, .. }));
    }

    #[test]
    fn flask_runs_under_gunicorn_added_when_missing() {
        let start = infer_for(
            &[("app.py", "from flask import Flask\napp = Flask(__name__)\n")],
            &["Flask"],
        );
        assert_eq!(
            line(&start),
            "python3 -m gunicorn --bind 0.0.0.0:$PORT app:app"
        );
        assert!(matches!(
            start,
            Start::Command {
                adds: Some(AddedServer::Gunicorn),
                ..
            }
        ));
        let listed = infer_for(
            &[("app.py", "app = Flask(__name__)\n")],
            &["flask", "gunicorn"],
        );
        assert!(matches!(listed, Start::Command { adds: None, .. }));
    }

    #[test]
    fn main_py_comes_before_app_py_and_app_before_application() {
        let start = infer_for(
            &[
                ("main.py", "application = Flask(__name__)\n"),
                ("app.py", "app = Flask(__name__)\n"),
            ],
            &["flask"],
        );
        assert_eq!(
            line(&start),
            "python3 -m gunicorn --bind 0.0.0.0:$PORT main:application"
        );
        let start = infer_for(
            &[
                ("main.py", "import os\n"),
                ("app.py", "app = Flask(__name__)\n"),
            ],
            &["flask"],
        );
        assert_eq!(
            line(&start),
            "python3 -m gunicorn --bind 0.0.0.0:$PORT app:app"
        );
    }

    #[test]
    fn only_module_level_bindings_count() {
        let nested = "def make():\n    app = Flask(__name__)\n    return app\nif app == 1:\n    pass\napplication: Flask = make()\n";
        let start = infer_for(&[("main.py", nested)], &["flask"]);
        assert_eq!(
            line(&start),
            "python3 -m gunicorn --bind 0.0.0.0:$PORT main:application"
        );
        let fasthtml = infer_for(
            &[(
                "main.py",
                "from fasthtml.common import *\napp, rt = fast_app()\n",
            )],
            &["python-fasthtml"],
        );
        assert_eq!(
            line(&fasthtml),
            "python3 -m uvicorn main:app --host 0.0.0.0 --port $PORT"
        );
    }

    #[test]
    fn factories_are_called() {
        let flask = infer_for(
            &[(
                "app/__init__.py",
                "def create_app():\n    return Flask(__name__)\n",
            )],
            &["flask", "gunicorn"],
        );
        assert_eq!(
            line(&flask),
            "python3 -m gunicorn --bind 0.0.0.0:$PORT app:create_app()"
        );
        let quart = infer_for(
            &[("main.py", "def create_app():\n    return Quart(__name__)\n")],
            &["quart"],
        );
        assert_eq!(
            line(&quart),
            "python3 -m uvicorn --factory main:create_app --host 0.0.0.0 --port $PORT"
        );
    }

    #[test]
    fn django_uses_the_projects_wsgi_module() {
        let files = [
            (
                "manage.py",
                "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n",
            ),
            ("mysite/wsgi.py", "application = get_wsgi_application()\n"),
            ("other/wsgi.py", "application = None\n"),
        ];
        let start = infer_for(&files, &["Django", "gunicorn"]);
        assert_eq!(
            line(&start),
            "python3 -m gunicorn --bind 0.0.0.0:$PORT mysite.wsgi:application"
        );
    }

    #[test]
    fn streamlit_and_plain_scripts() {
        let start = infer_for(
            &[
                ("main.py", "print(1)"),
                ("dashboard.py", ""),
                ("app.py", "import streamlit as st\n"),
            ],
            &["streamlit"],
        );
        assert_eq!(
            line(&start),
            "python3 -m streamlit run app.py --server.port $PORT --server.address 0.0.0.0 --server.headless true"
        );
        assert_eq!(
            line(&infer_for(
                &[("app.py", "print(1)"), ("main.py", "print(2)")],
                &["requests"]
            )),
            "python3 main.py"
        );
        assert_eq!(
            line(&infer_for(&[("app.py", "print(1)")], &[])),
            "python3 app.py"
        );
        // A framework without a findable app object still runs the script.
        assert_eq!(
            line(&infer_for(
                &[("main.py", "def run():\n    pass\n")],
                &["flask"]
            )),
            "python3 main.py"
        );
        assert_eq!(infer_for(&[("lib.py", "")], &["requests"]), Start::Unknown);
    }
}
