//! Shared by the end-to-end tests: a simulator on 127.0.0.1:0 and a client pointed at it.
#![allow(dead_code)]
use std::path::PathBuf;
use std::time::Duration;

use m365sync::auth::{Authenticator, Session, TokenCache};
use m365sync::config::Settings;
use m365sync::sim::{Sim, SimOptions};

pub struct Env {
    pub sim: Sim,
    pub settings: Settings,
    pub data: tempfile::TempDir,
}

pub fn fast_options() -> SimOptions {
    SimOptions {
        device_code_interval: 1,
        ..SimOptions::default()
    }
}

pub async fn start(opts: SimOptions) -> Env {
    let sim = Sim::start(opts).await.expect("simulator starts");
    let data = tempfile::tempdir().unwrap();
    let ca_file = sim.ca_cert_path.clone();
    let settings = Settings {
        authority: sim.base_url.clone(),
        graph_url: format!("{}/v1.0", sim.base_url),
        tenant: Some(sim.tenant_id.clone()),
        client_id: Some(sim.public_client_id.clone()),
        ca_file,
        service_account: None,
        data_dir: data.path().to_path_buf(),
    };
    Env {
        sim,
        settings,
        data,
    }
}

impl Env {
    pub fn http(&self) -> reqwest::Client {
        self.settings.http_client().unwrap()
    }
    pub fn auth(&self) -> Authenticator {
        Authenticator::new(
            self.http(),
            &self.settings.authority,
            self.settings.tenant.as_deref().unwrap(),
            self.settings.client_id.as_deref().unwrap(),
        )
    }
    pub fn app_auth(&self) -> (Authenticator, String) {
        let (id, secret) = self.sim.apps[0].clone();
        (
            Authenticator::new(
                self.http(),
                &self.settings.authority,
                self.settings.tenant.as_deref().unwrap(),
                &id,
            ),
            secret,
        )
    }
    pub fn cache(&self) -> TokenCache {
        TokenCache::new(self.cache_path())
    }
    pub fn cache_path(&self) -> PathBuf {
        self.settings
            .token_cache_path(self.settings.tenant.as_deref().unwrap())
    }

    /// Approve (or decline) a device code through the sign-in page's form, as a person does.
    pub async fn person(&self, user_code: &str, action: &str) {
        let resp = self
            .http()
            .post(format!("{}/devicelogin", self.sim.base_url))
            .form(&[("user_code", user_code), ("action", action)])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "devicelogin form: {}",
            resp.status()
        );
    }

    /// A signed-in app-only session (fastest way to a token when sign-in is not under test).
    pub async fn app_session(&self) -> std::sync::Arc<Session> {
        let (auth, secret) = self.app_auth();
        let tokens = auth.client_credentials(&secret).await.unwrap();
        Session::start(auth, self.cache(), tokens, Some(secret)).unwrap()
    }

    /// A delegated session through the full device-code flow, approved by the form.
    pub async fn device_session(&self) -> std::sync::Arc<Session> {
        let auth = self.auth();
        let start = auth.start_device_code().await.unwrap();
        let poll = {
            let auth = auth.clone();
            let start = start.clone();
            tokio::spawn(async move { auth.poll_device_code(&start).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.person(&start.user_code, "approve").await;
        let tokens = poll.await.unwrap().unwrap();
        Session::start(auth, self.cache(), tokens, None).unwrap()
    }
}

impl Env {
    /// The real binary pointed at the simulator, signed in app-only (first seeded app).
    pub fn bin(&self) -> std::process::Command {
        let (app_id, secret) = self.sim.apps[0].clone();
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_m365sync"));
        c.arg("--authority")
            .arg(&self.settings.authority)
            .arg("--graph-url")
            .arg(&self.settings.graph_url)
            .arg("--tenant")
            .arg(self.settings.tenant.as_deref().unwrap())
            .arg("--client-id")
            .arg(app_id)
            .arg("--data-dir")
            .arg(&self.settings.data_dir)
            .env("M365SYNC_CLIENT_SECRET", secret)
            .stdin(std::process::Stdio::null());
        c
    }

    /// Run the binary with `args` to the end.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = self.bin();
        c.args(args);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    }

    /// Run the binary; panic with its output unless it exits 0. Its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args).await;
        assert!(
            o.status.success(),
            "{args:?} exited {:?}: {}{}",
            o.status.code(),
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }
}

impl Env {
    /// `directory import` of a people CSV with these lines (the header first); panics unless
    /// it exits 0.
    pub async fn import_people(&self, csv: &str) {
        let path = self.data.path().join("people.csv");
        std::fs::write(&path, csv).unwrap();
        self.ok(&["directory", "import", path.to_str().unwrap()])
            .await;
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
