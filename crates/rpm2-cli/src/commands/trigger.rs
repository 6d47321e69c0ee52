//! `trigger <id|name|namespace|all> <action> [params]`: run an `@pm2/io`
//! action (`io.action`) in apps and print each reply as pm2 does,
//! `[name:id:namespace]=<JSON of what the action returned>`.

use std::process::ExitCode;

use rpm2_client::{ClientError, Triggered};
use rpm2_proto::{ErrorCode, EventProcess, Target};
use serde_json::Value;

use super::{CmdResult, Ctx};
use crate::error::exit;
use crate::print::out;

pub fn trigger(ctx: &Ctx, target: Target, action: String, params: Option<String>) -> CmdResult {
    let mut client = ctx.client()?;
    // pm2 passes the CLI's params on as the string typed.
    let params = params.map(Value::String);
    let done = match client.trigger(target, action.clone(), params) {
        Ok(done) => done,
        // The daemon's own refusals are pm2's texts, printed as pm2 does.
        Err(ClientError::Rpc(e))
            if matches!(e.code, ErrorCode::ProcessNotFound | ErrorCode::BadRequest) =>
        {
            eprintln!("{}", e.message);
            return Ok(ExitCode::from(exit::ERROR));
        }
        Err(e) => return Err(e.into()),
    };
    if done.sent.is_empty() {
        eprintln!("Not any process has received a command (offline or unexistent)");
        return Ok(ExitCode::from(exit::ERROR));
    }
    if !ctx.style.silent {
        out(&render(&done, &action, ctx.style.color));
    }
    let silent: Vec<&EventProcess> = done
        .sent
        .iter()
        .filter(|p| !done.replies.iter().any(|r| r.process.pm_id == p.pm_id))
        .collect();
    for p in &silent {
        eprintln!(
            "[RPM2][ERROR] [{}:{}:{}] did not reply (it exited, or the daemon stopped waiting)",
            p.name, p.pm_id, p.namespace
        );
    }
    Ok(if silent.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::ERROR)
    })
}

/// pm2's lines: the count (bold on a terminal), then one line per reply.
fn render(done: &Triggered, action: &str, color: bool) -> String {
    let count = format!(
        "{} processes have received command {action}",
        done.sent.len()
    );
    let mut text = if color {
        format!("\x1b[1m{count}\x1b[22m\n")
    } else {
        format!("{count}\n")
    };
    for r in &done.replies {
        // `%j` of a missing value prints `undefined`.
        let ret = r
            .data
            .get("return")
            .map_or_else(|| "undefined".to_owned(), Value::to_string);
        text.push_str(&format!(
            "[{}:{}:{}]={ret}\n",
            r.process.name, r.process.pm_id, r.process.namespace
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpm2_proto::ActionReply;
    use serde_json::json;

    fn proc(pm_id: u32) -> EventProcess {
        EventProcess {
            pm_id,
            name: "ioapp".into(),
            namespace: "default".into(),
        }
    }

    #[test]
    fn prints_pm2s_reply_format() {
        let done = Triggered {
            sent: vec![proc(0), proc(1)],
            replies: vec![
                ActionReply {
                    process: proc(1),
                    at: 1,
                    data: json!({"action_name": "hello", "return": {"ok": true, "n": 1}}),
                },
                ActionReply {
                    process: proc(0),
                    at: 2,
                    data: json!({"action_name": "hello"}),
                },
            ],
        };
        assert_eq!(
            render(&done, "hello", false),
            "2 processes have received command hello\n\
             [ioapp:1:default]={\"ok\":true,\"n\":1}\n\
             [ioapp:0:default]=undefined\n"
        );
        assert!(render(&done, "hello", true).starts_with("\x1b[1m2 processes"));
    }
}
