//! Boot, request, message and output helpers for the server suites.

use ssesim_model::{
    AgentInput, ClientMsg, ConnId, Delivery, Endpoint, EventStore, HttpRequest, HttpResponse,
    Millis, Origin, Seq, Server, ServerEvent, ServerInput, ServerOutput, ServerParams, ServerTimer,
    SessionId, TransportHealth,
};

pub fn boot() -> Server {
    boot_with(ServerParams::default())
}

pub fn boot_with(params: ServerParams) -> Server {
    Server::boot(EventStore::new(), params, 0).0
}

pub fn open(server: &mut Server, now: Millis) -> ConnId {
    let out = server.handle(now, ServerInput::OpenStream);
    match out.first() {
        Some(ServerOutput::StreamOpened { conn }) => *conn,
        other => panic!("expected StreamOpened first, got {other:?}"),
    }
}

// ─── Requests ──────────────────────────────────────────────────────────────────────────

/// The token of the requests [`post_to`] makes.
const POST_TOKEN: u64 = 77;

/// Sends `body` to `endpoint` from `conn` as request `token`; returns every output.
pub fn request_to(
    server: &mut Server,
    now: Millis,
    token: u64,
    endpoint: Endpoint,
    conn: Option<ConnId>,
    body: ClientMsg,
) -> Vec<ServerOutput> {
    server.handle(
        now,
        ServerInput::Request {
            token,
            request: HttpRequest {
                endpoint,
                connection_id: conn,
                body,
            },
        },
    )
}

/// [`request_to`] the body's own endpoint.
pub fn request(
    server: &mut Server,
    now: Millis,
    token: u64,
    conn: Option<ConnId>,
    body: ClientMsg,
) -> Vec<ServerOutput> {
    let endpoint = body.endpoint().expect("known type");
    request_to(server, now, token, endpoint, conn, body)
}

/// The reply to `token` among the outputs, if any.
pub fn reply(out: &[ServerOutput], token: u64) -> Option<HttpResponse> {
    out.iter().find_map(|o| match o {
        ServerOutput::Respond { token: t, response } if *t == token => Some(response.clone()),
        _ => None,
    })
}

/// Posts `body` to `endpoint` and returns the response (always the last output) and the
/// outputs before it.
pub fn post_to(
    server: &mut Server,
    now: Millis,
    endpoint: Endpoint,
    conn: Option<ConnId>,
    body: ClientMsg,
) -> (HttpResponse, Vec<ServerOutput>) {
    let mut out = request_to(server, now, POST_TOKEN, endpoint, conn, body);
    match out.pop() {
        Some(ServerOutput::Respond {
            token: POST_TOKEN,
            response,
        }) => (response, out),
        other => panic!("expected the response last, got {other:?}"),
    }
}

/// Posts `body` to its own endpoint from `conn`.
pub fn post(
    server: &mut Server,
    now: Millis,
    conn: Option<ConnId>,
    body: ClientMsg,
) -> (HttpResponse, Vec<ServerOutput>) {
    let endpoint = body.endpoint().expect("known type");
    post_to(server, now, endpoint, conn, body)
}

/// [`post`], expecting the endpoint's success status; the outputs before the response.
pub fn post_ok(
    server: &mut Server,
    now: Millis,
    conn: ConnId,
    body: ClientMsg,
) -> Vec<ServerOutput> {
    let endpoint = body.endpoint().expect("known type");
    let (response, out) = post(server, now, Some(conn), body);
    assert_eq!(
        response.status,
        endpoint.success_status(),
        "{endpoint}: {}",
        response.body
    );
    out
}

pub fn send(session: Option<&SessionId>, id: &str, text: &str) -> ClientMsg {
    ClientMsg::Send {
        session: session.cloned(),
        client_msg_id: id.to_string(),
        text: text.to_string(),
    }
}

pub fn interrupt(session: &SessionId, id: &str, text: &str) -> ClientMsg {
    ClientMsg::Interrupt {
        session: session.clone(),
        client_msg_id: id.to_string(),
        text: text.to_string(),
    }
}

// ─── Other inputs ──────────────────────────────────────────────────────────────────────

/// The agent of `s` emits output `n`.
pub fn emit(server: &mut Server, now: Millis, s: &SessionId, n: u32) -> Vec<ServerOutput> {
    server.handle(
        now,
        ServerInput::AgentEmit {
            session: s.clone(),
            n,
        },
    )
}

/// The periodic sync timer fires.
pub fn tick(server: &mut Server, now: Millis) -> Vec<ServerOutput> {
    server.handle(now, ServerInput::Timer(ServerTimer::Sync))
}

/// The `interrupt()` call `token` settles: resolved with `ok`, rejected without.
pub fn settle_interrupt(
    server: &mut Server,
    now: Millis,
    token: u64,
    ok: bool,
) -> Vec<ServerOutput> {
    server.handle(now, ServerInput::InterruptSettled { token, ok })
}

/// Writes to `conn`'s stream now behave as `health` says.
pub fn set_transport(
    server: &mut Server,
    now: Millis,
    conn: ConnId,
    health: TransportHealth,
) -> Vec<ServerOutput> {
    server.handle(now, ServerInput::SetTransport { conn, health })
}

// ─── Output extractors ─────────────────────────────────────────────────────────────────

pub fn deliveries(out: &[ServerOutput], conn: ConnId) -> Vec<(ServerEvent, Origin)> {
    out.iter()
        .filter_map(|o| match o {
            ServerOutput::Deliver(Delivery {
                conn: c,
                event,
                origin,
            }) if *c == conn => Some((event.clone(), *origin)),
            _ => None,
        })
        .collect()
}

/// Seqs of stored events delivered to `conn` with `origin`.
pub fn seqs(out: &[ServerOutput], conn: ConnId, origin: Origin) -> Vec<Seq> {
    deliveries(out, conn)
        .into_iter()
        .filter(|(_, o)| *o == origin)
        .filter_map(|(e, _)| e.tracked().map(|(_, q)| q))
        .collect()
}

pub fn agent_inputs(out: &[ServerOutput]) -> Vec<AgentInput> {
    out.iter()
        .filter_map(|o| match o {
            ServerOutput::AgentInput(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

pub fn call_interrupt_token(out: &[ServerOutput]) -> u64 {
    out.iter()
        .find_map(|o| match o {
            ServerOutput::CallInterrupt { token, .. } => Some(*token),
            _ => None,
        })
        .expect("CallInterrupt emitted")
}

// ─── Set-ups ───────────────────────────────────────────────────────────────────────────

/// Opens a stream and starts a session with a first message from it.
pub fn connected_session(server: &mut Server, now: Millis) -> (ConnId, SessionId) {
    let c = open(server, now);
    let out = post_ok(server, now, c, send(None, "first", "hello"));
    let s = agent_inputs(&out)[0].session.clone();
    (c, s)
}

/// A running session `s` started by `c`'s first message, plus a second watcher `w`.
pub fn session_with_watcher(server: &mut Server) -> (ConnId, ConnId, SessionId) {
    let (c, s) = connected_session(server, 0);
    let w = open(server, 0);
    post_ok(server, 0, w, ClientMsg::Watch { session: s.clone() });
    (c, w, s)
}
