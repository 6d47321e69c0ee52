//! pm2's module configuration (`rpm2 set app.key value`, kept in the
//! home's `module_conf.json`) reaches the app's environment: when the app
//! is started, and when it is restarted or reloaded by name, as pm2's
//! client does. An unreadable store is logged and changes nothing.

use std::collections::BTreeMap;

use rpm2_client::module_conf;
use rpm2_proto::{Request, Target};

use crate::paths::Home;

/// `req` with the module configuration of the apps it names merged in.
pub fn merge(home: &Home, req: Request) -> Request {
    match req {
        Request::Start { .. } | Request::StartOrReload { .. } => {}
        Request::Restart { ref targets, .. } | Request::Reload { ref targets, .. }
            if targets.iter().any(|t| matches!(t, Target::Name(_))) => {}
        _ => return req,
    }
    let path = home.module_conf_file();
    let conf = match module_conf::load(&path) {
        Ok(c) if c.is_empty() => return req,
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("module configuration not applied: {e}");
            return req;
        }
    };
    let by_name = |targets: &[Target]| {
        let mut env = BTreeMap::new();
        for t in targets {
            if let Target::Name(name) = t {
                env.extend(module_conf::app_env(&conf, name));
            }
        }
        env
    };
    match req {
        Request::Start { mut apps, only_new } => {
            for app in &mut apps {
                app.env.extend(module_conf::app_env(&conf, &app.name));
            }
            Request::Start { apps, only_new }
        }
        Request::StartOrReload { mut apps } => {
            for app in &mut apps {
                app.env.extend(module_conf::app_env(&conf, &app.name));
            }
            Request::StartOrReload { apps }
        }
        Request::Restart {
            targets,
            update_env,
        } => {
            let update_env = with(update_env, by_name(&targets));
            Request::Restart {
                targets,
                update_env,
            }
        }
        Request::Reload {
            targets,
            update_env,
            parallel,
        } => {
            let update_env = with(update_env, by_name(&targets));
            Request::Reload {
                targets,
                update_env,
                parallel,
            }
        }
        other => other,
    }
}

/// The caller's update (if any) with the module values over it.
fn with(
    update: Option<BTreeMap<String, String>>,
    conf: BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    if conf.is_empty() {
        return update;
    }
    let mut env = update.unwrap_or_default();
    env.extend(conf);
    Some(env)
}
