//! The `server` host: boots a [`Server`] from the disk, accepts SSE streams and POSTs, runs
//! its timers and the agent driver, and carries its outputs onto sockets.

use super::{ms, World};
use crate::faults::InterruptCall;
use crate::history::{Event, WireEvent};
use crate::net::{decode, encode, Down, Up, PORT};
use futures::{SinkExt, StreamExt};
use ssesim_model::{
    ConnId, Endpoint, Frame, HttpRequest, HttpResponse, Millis, Server, ServerInput, ServerOutput,
    ServerTimer,
};
use ssesim_scenarios::{EventsEndpoint, FaultEndpoint};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use turmoil::net::{TcpListener, TcpStream};

/// One process lifetime: everything here dies with a crash.
struct Process {
    world: Rc<World>,
    streams: RefCell<BTreeMap<ConnId, mpsc::UnboundedSender<Down>>>,
    /// The receiver of a stream just opened, picked up by the connection task that asked.
    fresh_stream: RefCell<Option<(ConnId, mpsc::UnboundedReceiver<Down>)>>,
    replies: RefCell<BTreeMap<u64, HttpResponse>>,
    timers: RefCell<BTreeMap<ServerTimer, Millis>>,
    timer_wake: Notify,
    next_token: Cell<u64>,
}

pub(super) async fn main(world: Rc<World>) -> turmoil::Result {
    let store = world.disk.borrow_mut().take().unwrap_or_default();
    let (server, outputs) = Server::boot(store, world.params.server.clone(), world.now());
    let boot = server.boot_number();
    *world.server.borrow_mut() = Some(server);
    world.record(Event::ServerUp { boot });
    let process = Rc::new(Process {
        world: world.clone(),
        streams: RefCell::new(BTreeMap::new()),
        fresh_stream: RefCell::new(None),
        replies: RefCell::new(BTreeMap::new()),
        timers: RefCell::new(BTreeMap::new()),
        timer_wake: Notify::new(),
        next_token: Cell::new(0),
    });
    process.apply_all(outputs);
    tokio::task::spawn_local(timers(process.clone()));
    tokio::task::spawn_local(inbox(process.clone()));
    let listener = TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::task::spawn_local(serve(process.clone(), socket));
    }
}

impl Process {
    /// Feeds one input to the machine and acts on what it says, recording both.
    fn handle(self: &Rc<Self>, input: ServerInput) {
        let now = self.world.now();
        let outputs = {
            let mut slot = self.world.server.borrow_mut();
            let Some(server) = slot.as_mut() else {
                return;
            };
            self.world.record(Event::ServerIn {
                input: input.clone(),
            });
            server.handle(now, input)
        };
        self.apply_all(outputs);
    }

    fn apply_all(self: &Rc<Self>, outputs: Vec<ServerOutput>) {
        for output in outputs {
            if !self.world.server_is_up() {
                return;
            }
            self.world.record(Event::ServerOut {
                output: output.clone(),
            });
            self.apply(output);
        }
    }

    fn apply(self: &Rc<Self>, output: ServerOutput) {
        match output {
            ServerOutput::StreamOpened { conn } => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.streams.borrow_mut().insert(conn, tx);
                *self.fresh_stream.borrow_mut() = Some((conn, rx));
            }
            ServerOutput::Deliver(d) => {
                let frame = Frame::of(d.event);
                self.write(d.conn, Down::Frame { frame });
            }
            ServerOutput::Heartbeat { conn } => self.write(conn, Down::Heartbeat),
            ServerOutput::CloseStream { conn } => {
                self.streams.borrow_mut().remove(&conn);
            }
            ServerOutput::Respond { token, response } => {
                self.replies.borrow_mut().insert(token, response);
            }
            ServerOutput::CallInterrupt { token, .. } => self.call_interrupt(token),
            ServerOutput::SetTimer { timer, at } => {
                self.timers.borrow_mut().insert(timer, at);
                self.timer_wake.notify_one();
            }
            ServerOutput::Crash { reason } => self.world.kill_server(reason),
            _ => {}
        }
    }

    fn write(&self, conn: ConnId, down: Down) {
        let sent = self
            .streams
            .borrow()
            .get(&conn)
            .is_some_and(|tx| tx.send(down).is_ok());
        if !sent {
            self.world.record(Event::Wire {
                tab: None,
                event: WireEvent::FrameDiscarded { conn },
            });
        }
    }

    /// `interrupt()` settles after a short delay, failing if a fault says so; a
    /// crash-at-interrupt fault kills the process before it can settle at all.
    fn call_interrupt(self: &Rc<Self>, token: u64) {
        let call = self.world.faults.borrow_mut().interrupt();
        let ok = match call {
            InterruptCall::Crash => {
                self.world
                    .kill_server("crash at the interrupt point".into());
                return;
            }
            InterruptCall::Settle { ok } => ok,
        };
        let delay = self.world.net.interrupt_latency_ms;
        let me = self.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(ms(delay)).await;
            me.handle(ServerInput::InterruptSettled { token, ok });
        });
    }

    fn token(&self) -> u64 {
        self.next_token.set(self.next_token.get() + 1);
        self.next_token.get()
    }

    /// Takes the next injected status for an endpoint, if any.
    fn injected(&self, endpoint: FaultEndpoint) -> Option<(u16, Option<u32>)> {
        self.world.faults.borrow_mut().injected(endpoint)
    }

    fn response_lost(&self, endpoint: Endpoint) -> bool {
        self.world.faults.borrow_mut().response_lost(endpoint)
    }
}

/// The timer wheel of one process: fires the earliest due timer, re-checking when a new
/// one is armed.
async fn timers(process: Rc<Process>) {
    loop {
        let next = process
            .timers
            .borrow()
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (t.clone(), *at));
        match next {
            None => process.timer_wake.notified().await,
            Some((timer, at)) => {
                let now = process.world.now();
                if at <= now {
                    process.timers.borrow_mut().remove(&timer);
                    process.handle(ServerInput::Timer(timer));
                } else {
                    tokio::select! {
                    // Branch order must not come from tokio's unseeded RNG.
                    biased;
                                _ = tokio::time::sleep(ms(at - now)) => {}
                                _ = process.timer_wake.notified() => {}
                            }
                }
            }
        }
    }
}

/// The agent driver and the engine's server-side commands, in arrival order.
async fn inbox(process: Rc<Process>) {
    loop {
        loop {
            let next = process.world.server_inbox.borrow_mut().pop_front();
            match next {
                Some(input) => process.handle(input),
                None => break,
            }
        }
        process.world.server_wake.notified().await;
    }
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

async fn serve(process: Rc<Process>, socket: TcpStream) {
    let mut conn = Framed::new(socket, LengthDelimitedCodec::new());
    let Some(Ok(first)) = conn.next().await else {
        return;
    };
    match decode::<Up>(&first) {
        Some(Up::Events) => serve_stream(process, conn).await,
        Some(Up::Post { request }) => serve_post(process, conn, request).await,
        Some(Up::Beacon {
            connection_id,
            sessions,
        }) => {
            // The beacon endpoint names the connection in its body; it answers nobody.
            let request = HttpRequest::suspend_beacon(connection_id, sessions);
            let token = process.token();
            process.handle(ServerInput::Request { token, request });
            process.replies.borrow_mut().remove(&token);
        }
        None => {}
    }
}

fn injected_record(process: &Process, endpoint: String, status: u16) {
    process.world.record(Event::Wire {
        tab: None,
        event: WireEvent::StatusInjected { endpoint, status },
    });
}

async fn serve_stream(process: Rc<Process>, mut conn: Conn) {
    if let Some((status, _)) = process.injected(FaultEndpoint::Events(EventsEndpoint::Events)) {
        injected_record(&process, "events".into(), status);
        let _ = conn.send(encode(&Down::Refused { status })).await;
        return;
    }
    process.handle(ServerInput::OpenStream);
    let Some((id, mut rx)) = process.fresh_stream.borrow_mut().take() else {
        return;
    };
    let closed_by_server = loop {
        tokio::select! {
            // Branch order must not come from tokio's unseeded RNG.
            biased;
            down = rx.recv() => match down {
                Some(down) => {
                    if conn.send(encode(&down)).await.is_err() {
                        break false;
                    }
                }
                None => break true,
            },
            up = conn.next() => match up {
                Some(Ok(_)) => {}
                _ => break false,
            },
        }
    };
    if !closed_by_server {
        process.streams.borrow_mut().remove(&id);
        process.handle(ServerInput::StreamClosed { conn: id });
    }
}

async fn serve_post(process: Rc<Process>, mut conn: Conn, request: HttpRequest) {
    let endpoint = request.endpoint;
    if let Some((status, retry_after_s)) = process.injected(FaultEndpoint::Post(endpoint)) {
        injected_record(&process, endpoint.to_string(), status);
        let mut response = HttpResponse::new(status, "injected");
        response.retry_after_s = retry_after_s;
        let _ = conn.send(encode(&Down::Response { response })).await;
        return;
    }
    let token = process.token();
    process.handle(ServerInput::Request { token, request });
    // Most handlers answer in the same call; a deferred one (an interrupt awaiting
    // `interrupt()` under receipts) answers when a later input settles it.
    let response = loop {
        if let Some(response) = process.replies.borrow_mut().remove(&token) {
            break response;
        }
        if !process.world.server_is_up() {
            // The process died before answering: the socket goes with it.
            return;
        }
        tokio::time::sleep(ms(1)).await;
    };
    if process.response_lost(endpoint) {
        process.world.record(Event::Wire {
            tab: None,
            event: WireEvent::ResponseLost {
                endpoint: endpoint.to_string(),
            },
        });
        return;
    }
    let _ = conn.send(encode(&Down::Response { response })).await;
}
