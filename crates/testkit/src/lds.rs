//! A listener served by LDS from a watched directory (Envoy's file-based
//! xDS: `path_config_source` with `watched_directory`), so that a test can
//! push new plugin configurations while Envoy runs, the way a control
//! plane does. Both the bootstrap and the listeners are printed from the
//! project's one renderer (crates/render) as JSON (which is YAML).

use vrata_mirror_render::envoy::Bootstrap;

/// The watched directory and the bootstrap that reads its listener from it.
pub struct LdsConfig {
    pub dir: std::path::PathBuf,
    /// The bootstrap: the rendered one, its static listener replaced by LDS.
    pub bootstrap: String,
}

impl LdsConfig {
    /// `tag` names the directory (one per test in a process).
    pub fn new(bootstrap: &Bootstrap, tag: &str) -> LdsConfig {
        let dir = std::env::temp_dir().join(format!("vrata-e2e-lds-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut tree = bootstrap.tree().to_json();
        let statics = tree["static_resources"].as_object_mut().expect("static_resources");
        assert!(statics.remove("listeners").is_some(), "a static listener");
        tree["dynamic_resources"] = serde_json::json!({
            "lds_config": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": dir.join("lds.yaml").display().to_string(),
                    "watched_directory": {"path": dir.display().to_string()}
                }
            }
        });
        LdsConfig {
            dir,
            bootstrap: serde_json::to_string_pretty(&tree).unwrap(),
        }
    }

    /// Publishes `bootstrap`'s listener: written aside, then renamed over
    /// the watched file (a rename is what the directory watch reacts to).
    pub fn publish(&self, bootstrap: &Bootstrap) {
        let rendered = bootstrap.tree().to_json();
        let mut listener = rendered["static_resources"]["listeners"][0].clone();
        assert!(listener.is_object(), "a listener in {rendered}");
        listener["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener".into();
        let resources = serde_json::json!({ "resources": [listener] });
        let staged = self.dir.join("lds.yaml.next");
        std::fs::write(&staged, serde_json::to_string_pretty(&resources).unwrap()).unwrap();
        std::fs::rename(&staged, self.dir.join("lds.yaml")).unwrap();
    }
}

impl Drop for LdsConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
