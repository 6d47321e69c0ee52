//! pm2's module configuration (`rpm2 set app.key value`, kept in the
//! home's `module_conf.json`) reaches the app's environment: when the app
//! is started, and when it is restarted or reloaded by name, as pm2's
//! client does. An unreadable store is logged and changes nothing.

use std::collections::BTreeMap;

use rpm2_client::module_conf;
use rpm2_proto::{Request, Target};

use crate::paths::Home;

/// `req` with the module configuration of the apps it names merged in.
pub fn merge(home: &Home, mut req: Request) -> Request {
    let wanted = match &req {
        Request::Start { .. } | Request::StartOrReload { .. } => true,
        Request::Restart { targets, .. } | Request::Reload { targets, .. } => {
            targets.iter().any(|t| matches!(t, Target::Name(_)))
        }
        _ => false,
    };
    if !wanted {
        return req;
    }
    let conf = match module_conf::load(&home.module_conf_file()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("module configuration not applied: {e}");
            return req;
        }
    };
    match &mut req {
        Request::Start { apps, .. } | Request::StartOrReload { apps } => {
            for app in apps {
                for (k, v) in module_conf::app_env(&conf, &app.name) {
                    // A variable the app's own env sets wins over `{}`.
                    if v != "{}" || !app.env.contains_key(&k) {
                        app.env.insert(k, v);
                    }
                }
            }
        }
        Request::Restart {
            targets,
            update_env,
            ..
        }
        | Request::Reload {
            targets,
            update_env,
            ..
        } => {
            let mut values = BTreeMap::new();
            for t in targets.iter() {
                if let Target::Name(name) = t {
                    if conf.contains_key(name) {
                        values.extend(module_conf::app_env(&conf, name));
                    }
                }
            }
            // The caller's update (if any) with the module values over it.
            if !values.is_empty() {
                update_env.get_or_insert_with(BTreeMap::new).extend(values);
            }
        }
        _ => {}
    }
    req
}
