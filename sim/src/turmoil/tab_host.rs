//! A tab host: the [`Client`] machine plus the browser around it. The browser part is
//! the EventSource (re-opens by itself after a network failure, stays closed after an HTTP
//! error), `fetch` with a timeout, `sendBeacon`, and `setTimeout`.

use super::{ms, TabCommand, World, SERVER};
use crate::history::{Event, WireEvent};
use crate::net::{decode, encode, Down, Up, PORT};
use futures::{SinkExt, StreamExt};
use ssesim_model::{
    ClientInput, ClientOutput, ClientTimer, ConnId, EsId, Frame, FrameName, HttpRequest,
    PostOutcome, ReqId, SessionCursor,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use turmoil::net::TcpStream;

enum EsCommand {
    DoubleReopen { gap_ms: u64 },
}

/// A running EventSource task and its command channel.
type EsTask = (JoinHandle<()>, mpsc::UnboundedSender<EsCommand>);

struct Browser {
    world: Rc<World>,
    tab: u32,
    streams: RefCell<BTreeMap<EsId, EsTask>>,
    /// `setTimeout` handles, one per client timer.
    timers: RefCell<BTreeMap<ClientTimer, JoinHandle<()>>>,
}

pub(super) async fn main(world: Rc<World>, tab: u32) -> turmoil::Result {
    let browser = Rc::new(Browser {
        world: world.clone(),
        tab,
        streams: RefCell::new(BTreeMap::new()),
        timers: RefCell::new(BTreeMap::new()),
    });
    let me = &world.tabs[tab as usize];
    loop {
        loop {
            let next = me.inbox.borrow_mut().pop_front();
            match next {
                Some(TabCommand::Input(input)) => browser.feed(input),
                Some(TabCommand::DoubleReopen { gap_ms }) => browser.double_reopen(gap_ms),
                None => break,
            }
        }
        me.wake.notified().await;
    }
}

impl Browser {
    fn record(&self, event: Event) {
        self.world.record(event);
    }

    fn wire(&self, event: WireEvent) {
        self.record(Event::Wire {
            tab: Some(self.tab),
            event,
        });
    }

    /// Feeds one input to the client and acts on every output, recording both.
    fn feed(self: &Rc<Self>, input: ClientInput) {
        let tab = &self.world.tabs[self.tab as usize];
        self.record(Event::ClientIn {
            tab: self.tab,
            input: input.clone(),
        });
        let (outputs, before, after) = {
            let mut client = tab.client.borrow_mut();
            let before = client.pending_len();
            let out = client.handle(self.world.now(), input);
            let after = client.pending_len();
            tab.max_pending.set(tab.max_pending.get().max(after));
            (out, before, after)
        };
        for output in outputs {
            self.record(Event::ClientOut {
                tab: self.tab,
                output: output.clone(),
            });
            self.act(output);
        }
        if before != after {
            self.record(Event::Queue {
                tab: self.tab,
                pending: after,
            });
        }
    }

    fn act(self: &Rc<Self>, output: ClientOutput) {
        match output {
            ClientOutput::OpenStream { es } => {
                let (tx, rx) = mpsc::unbounded_channel();
                let handle = tokio::task::spawn_local(event_source(self.clone(), es, rx));
                self.streams.borrow_mut().insert(es, (handle, tx));
            }
            ClientOutput::CloseStream { es } => {
                // A closed EventSource never fires again: its task dies here.
                if let Some((handle, _)) = self.streams.borrow_mut().remove(&es) {
                    handle.abort();
                }
            }
            ClientOutput::Post {
                req,
                endpoint,
                connection_id,
                body,
            } => {
                let request = HttpRequest::on(connection_id, endpoint, body);
                tokio::task::spawn_local(fetch(self.clone(), req, request));
            }
            ClientOutput::Beacon {
                connection_id,
                sessions,
            } => {
                tokio::task::spawn_local(beacon(connection_id, sessions));
            }
            ClientOutput::SetTimer { timer, at } => {
                let me = self.clone();
                let delay = at.saturating_sub(self.world.now());
                let handle = tokio::task::spawn_local(async move {
                    tokio::time::sleep(ms(delay)).await;
                    me.timers.borrow_mut().remove(&timer);
                    me.feed(ClientInput::Timer(timer));
                });
                if let Some(old) = self.timers.borrow_mut().insert(timer, handle) {
                    old.abort();
                }
            }
            ClientOutput::CancelTimer { timer } => {
                if let Some(old) = self.timers.borrow_mut().remove(&timer) {
                    old.abort();
                }
            }
            ClientOutput::SendReturned { .. }
            | ClientOutput::Dropped { .. }
            | ClientOutput::App(_) => {}
        }
    }

    fn double_reopen(&self, gap_ms: u64) {
        let current = self.world.tabs[self.tab as usize]
            .client
            .borrow()
            .current_stream();
        if let Some(es) = current {
            if let Some((_, tx)) = self.streams.borrow().get(&es) {
                let _ = tx.send(EsCommand::DoubleReopen { gap_ms });
            }
        }
    }
}

type Conn = Framed<TcpStream, LengthDelimitedCodec>;

async fn connect(world: &World) -> Option<Conn> {
    let timeout = ms(world.net.fetch_timeout_ms);
    match tokio::time::timeout(timeout, TcpStream::connect((SERVER, PORT))).await {
        Ok(Ok(socket)) => Some(Framed::new(socket, LengthDelimitedCodec::new())),
        _ => None,
    }
}

/// How one stream attempt ended.
enum StreamEnd {
    Lost(&'static str),
    Refused(u16),
    Reopen,
}

/// A double welcome in progress (see [`EsCommand::DoubleReopen`]).
#[derive(Default)]
struct DoubleWelcome {
    /// The gap between the two dispatches, while the fault is in progress.
    gap_ms: Option<u64>,
    /// The first re-open's welcome, held until the second re-open's welcome arrives.
    held: Option<Frame>,
}

/// The browser's EventSource: one task per `EsId`, re-opening the stream after network
/// failures until the client closes it.
///
/// A double welcome re-opens the stream twice in a row: the first re-open's welcome is
/// held (queued in the page's event loop) while the browser drops that connection and
/// opens a second one; when the second welcome arrives, both are dispatched `gap_ms`
/// apart, in order (first welcome, the first re-open's `error`, second welcome). So both
/// welcomes reach the client before the reconnect POST of the first one can settle, as in
/// the [T2] test "ignores stale reconnect POST when a newer welcome arrives", as long as
/// `gap_ms` is shorter than a POST's round trip.
async fn event_source(
    browser: Rc<Browser>,
    es: EsId,
    mut commands: mpsc::UnboundedReceiver<EsCommand>,
) {
    let world = browser.world.clone();
    let mut double = DoubleWelcome::default();
    loop {
        let end = match connect(&world).await {
            None => StreamEnd::Lost("connect failed"),
            Some(mut conn) => {
                if conn.send(encode(&Up::Events)).await.is_err() {
                    StreamEnd::Lost("write failed")
                } else {
                    read_stream(&browser, es, &mut conn, &mut commands, &mut double).await
                }
            }
        };
        if !matches!(end, StreamEnd::Reopen) {
            // The second re-open failed: dispatch what the first one queued, then go on.
            double.gap_ms = None;
            if let Some(frame) = double.held.take() {
                browser.feed(ClientInput::Frame { es, frame });
                browser.feed(ClientInput::StreamError { es });
            }
        }
        match end {
            StreamEnd::Refused(status) => {
                browser.wire(WireEvent::StreamRefused { es, status });
                browser.feed(ClientInput::StreamError { es });
                return;
            }
            StreamEnd::Lost(why) => {
                browser.wire(WireEvent::StreamLost {
                    es,
                    why: why.to_string(),
                });
                browser.feed(ClientInput::StreamError { es });
                tokio::time::sleep(ms(world.net.es_retry_ms)).await;
            }
            StreamEnd::Reopen => {
                browser.wire(WireEvent::StreamReopened { es });
                // With a welcome held, this `error` is dispatched after it.
                if double.held.is_none() {
                    browser.feed(ClientInput::StreamError { es });
                }
            }
        }
    }
}

async fn read_stream(
    browser: &Rc<Browser>,
    es: EsId,
    conn: &mut Conn,
    commands: &mut mpsc::UnboundedReceiver<EsCommand>,
    double: &mut DoubleWelcome,
) -> StreamEnd {
    let idle = ms(browser.world.net.es_idle_timeout_ms);
    loop {
        tokio::select! {
            // Branch order must not come from tokio's unseeded RNG; a fault command
            // due now goes before frames that arrived in the same tick.
            biased;
            // (A closed channel fails the pattern, which only disables this branch.)
            Some(EsCommand::DoubleReopen { gap_ms }) = commands.recv() => {
                double.gap_ms = Some(gap_ms);
                double.held = None;
                return StreamEnd::Reopen;
            },
            next = tokio::time::timeout(idle, conn.next()) => match next {
                Err(_) => return StreamEnd::Lost("idle timeout"),
                Ok(None) | Ok(Some(Err(_))) => return StreamEnd::Lost("stream closed"),
                Ok(Some(Ok(bytes))) => match decode::<Down>(&bytes) {
                    Some(Down::Frame { frame }) => {
                        let welcome = frame.name == FrameName::Welcome;
                        match (welcome, double.gap_ms, double.held.take()) {
                            // The first re-open's welcome: queue it and re-open again.
                            (true, Some(_), None) => {
                                double.held = Some(frame);
                                return StreamEnd::Reopen;
                            }
                            // The second one: dispatch both, `gap_ms` apart.
                            (true, Some(gap), Some(first)) => {
                                double.gap_ms = None;
                                browser.feed(ClientInput::Frame { es, frame: first });
                                browser.feed(ClientInput::StreamError { es });
                                tokio::time::sleep(ms(gap)).await;
                                browser.feed(ClientInput::Frame { es, frame });
                            }
                            (_, _, held) => {
                                double.held = held;
                                browser.feed(ClientInput::Frame { es, frame });
                            }
                        }
                    }
                    Some(Down::Refused { status }) => return StreamEnd::Refused(status),
                    Some(Down::Heartbeat) | Some(Down::Response { .. }) | None => {}
                },
            },
        }
    }
}

/// `fetch` with a timeout: any failure before a reply is a network error.
async fn fetch(browser: Rc<Browser>, req: ReqId, request: HttpRequest) {
    let world = browser.world.clone();
    let attempt = async {
        let mut conn = connect(&world).await.ok_or("connect failed")?;
        conn.send(encode(&Up::Post { request }))
            .await
            .map_err(|_| "write failed")?;
        match conn.next().await {
            Some(Ok(bytes)) => match decode::<Down>(&bytes) {
                Some(Down::Response { response }) => Ok(response),
                _ => Err("unexpected reply"),
            },
            _ => Err("connection closed without a reply"),
        }
    };
    let outcome = match tokio::time::timeout(ms(world.net.fetch_timeout_ms), attempt).await {
        Ok(Ok(response)) => PostOutcome::Status {
            status: response.status,
            retry_after_s: response.retry_after_s,
        },
        Ok(Err(why)) => {
            browser.wire(WireEvent::PostFailed {
                req,
                why: why.to_string(),
            });
            PostOutcome::NetworkError
        }
        Err(_) => {
            browser.wire(WireEvent::PostFailed {
                req,
                why: "timed out".to_string(),
            });
            PostOutcome::NetworkError
        }
    };
    browser.feed(ClientInput::PostDone { req, outcome });
}

/// `navigator.sendBeacon`: fire and forget.
async fn beacon(connection_id: ConnId, sessions: Vec<SessionCursor>) {
    if let Ok(socket) = TcpStream::connect((SERVER, PORT)).await {
        let mut conn = Framed::new(socket, LengthDelimitedCodec::new());
        let _ = conn
            .send(encode(&Up::Beacon {
                connection_id,
                sessions,
            }))
            .await;
    }
}
