//! The primary's part in worker health: probe connections handed to one
//! run (a socketpair end, like an accepted connection), and what listens
//! where.

use std::sync::Arc;

use super::{Conn, PendingConn, Primary};
use crate::Gen;

impl Primary {
    /// Whether run `gen`'s app routes connections through the daemon (not
    /// `NODE_CLUSTER_SCHED_POLICY=none`, where workers accept themselves).
    #[must_use]
    pub fn routes(&self, gen: Gen) -> bool {
        self.runs
            .get(&gen)
            .and_then(|r| self.apps.get(&r.app))
            .is_some_and(|a| !a.policy.shared_streams)
    }

    /// Whether run `gen` listens on `port` (a TCP probe in cluster mode:
    /// the socket is ours, so a connect would always succeed).
    #[must_use]
    pub fn listens_on(&self, gen: Gen, port: u16) -> bool {
        self.key_on(gen, port).is_some()
    }

    /// Hand run `gen` a connection the daemon made itself (one end of a
    /// socketpair; a health probe) as if it came in on `port`, whether or
    /// not the run takes connections now. A refusal is not routed elsewhere.
    pub fn hand_probe(
        &mut self,
        gen: Gen,
        port: u16,
        fd: std::os::fd::OwnedFd,
    ) -> Result<(), String> {
        let Some(key) = self.key_on(gen, port).cloned() else {
            return Err(format!("the worker does not listen on port {port}"));
        };
        let seq = self.next_seq(gen);
        let Some(run) = self.runs.get_mut(&gen) else {
            return Err("the worker has no channel".into());
        };
        let conn = Conn {
            fd: Arc::new(fd),
            peer: None,
            forwarded: None,
            app: Arc::clone(&run.app),
            key: Arc::from(key.as_str()),
            refusals: 0,
        };
        run.link
            .send_handle_line(
                rpm2_node_ipc::handoff::newconn_line(&conn.key, seq),
                Arc::clone(&conn.fd),
            )
            .map_err(|e| format!("cannot hand the probe to the worker: {e}"))?;
        run.pending.push_back(PendingConn {
            seq,
            conn,
            probe: true,
        });
        Ok(())
    }
}
