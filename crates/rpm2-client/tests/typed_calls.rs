//! The typed calls against a fake daemon on a temporary socket: each method
//! sends its request and turns the answer into its own type.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;

use rpm2_client::{Client, ClientError, Home};
use rpm2_proto::frame::{encode, FrameDecoder};
use rpm2_proto::{ErrorCode, Request, Response, RpcError, ScaleCount, SignalName, Target};

/// A daemon that answers each request with `answer(request)` and reports
/// what it got.
fn fake_daemon(
    home: &Home,
    answer: impl Fn(&Request) -> Response + Send + 'static,
) -> mpsc::Receiver<Request> {
    home.ensure().unwrap();
    let listener = UnixListener::bind(home.rpc_socket()).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut decoder = FrameDecoder::new();
        let mut buf = [0u8; 4096];
        loop {
            while let Some(req) = decoder.next_frame::<Request>().unwrap() {
                let resp = match &req {
                    Request::Hello { .. } => Response::Hello {
                        protocol: rpm2_proto::PROTOCOL_VERSION,
                        daemon_version: "test".into(),
                        pid: 42,
                        home: String::new(),
                        update_refused: None,
                    },
                    other => answer(other),
                };
                stream.write_all(&encode(&resp).unwrap()).unwrap();
                let _ = tx.send(req);
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.extend(&buf[..n]),
            }
        }
    });
    rx
}

fn answers(req: &Request) -> Response {
    match req {
        Request::Ping | Request::Flush { .. } => Response::Ok,
        Request::Save { .. } => Response::Saved {
            path: "/h/dump.pm2".into(),
            apps: 3,
        },
        Request::Stop { .. } => Response::Error {
            error: RpcError::new(ErrorCode::ProcessNotFound, "web not found"),
        },
        Request::Reset { .. } => Response::Pong,
        _ => Response::Processes {
            processes: Vec::new(),
        },
    }
}

#[test]
fn each_call_sends_its_request_and_types_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let got = fake_daemon(&home, answers);
    let mut c = Client::connect(&home).unwrap();
    assert_eq!(c.daemon_pid, 42);
    assert!(matches!(got.recv().unwrap(), Request::Hello { .. }));

    c.ping().unwrap();
    assert_eq!(got.recv().unwrap(), Request::Ping);

    assert!(c.list().unwrap().is_empty());
    assert_eq!(got.recv().unwrap(), Request::List);

    c.scale("web".into(), ScaleCount::Up(2)).unwrap();
    assert_eq!(
        got.recv().unwrap(),
        Request::Scale {
            name: "web".into(),
            count: ScaleCount::Up(2)
        }
    );

    let sig: SignalName = "usr2".parse().unwrap();
    c.send_signal(sig, vec![Target::Id(0)]).unwrap();
    assert_eq!(
        got.recv().unwrap(),
        Request::SendSignal {
            signal: sig,
            targets: vec![Target::Id(0)]
        }
    );

    let saved = c.save(true).unwrap();
    assert_eq!((saved.path.as_str(), saved.apps), ("/h/dump.pm2", 3));
    assert_eq!(got.recv().unwrap(), Request::Save { force: true });

    c.flush(Vec::new()).unwrap();
    assert_eq!(got.recv().unwrap(), Request::Flush { targets: vec![] });
}

#[test]
fn errors_keep_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let _got = fake_daemon(&home, answers);
    let mut c = Client::connect(&home).unwrap();

    let err = c.stop(vec![Target::Name("web".into())]).unwrap_err();
    assert!(matches!(err, ClientError::Rpc(_)));
    assert_eq!(err.code(), ErrorCode::ProcessNotFound);
    assert_eq!(err.to_string(), "web not found");

    // An answer the request never gets is a protocol problem, not data.
    let err = c.reset(vec![Target::All]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ProtocolMismatch);
    assert!(err.to_string().contains("reset"), "{err}");
}

#[test]
fn no_daemon_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect(&Home::new(dir.path())).err().unwrap();
    assert_eq!(err.code(), ErrorCode::DaemonUnavailable);
}
