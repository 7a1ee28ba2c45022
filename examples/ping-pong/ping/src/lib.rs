//! `ping`: serves the ball. A message on `game.serve` (its payload the
//! number of hits to play, e.g. `4`) or on `ball.to-ping` (the hits left)
//! is logged and, while hits are left, sent on to `pong` on `ball.to-pong`
//! with one hit less.
//!
//! Which topics reach `ping` is host configuration: `subscribe` in
//! `policy.toml`, covered by the `msg:subscribe` capabilities declared
//! here.

#[airssys::component(
    requires = [
        "msg:subscribe:game.serve",
        "msg:subscribe:ball.to-ping",
        "msg:publish:ball.to-pong",
        "log:write",
    ],
)]
struct Ping;

/// Where the ball goes next.
const TO_PONG: &str = "ball.to-pong";

impl guest::Lifecycle for Ping {}

impl guest::Handler for Ping {
    fn handle_message(message: guest::handler::Message) -> Result<(), guest::handler::Error> {
        use guest::handler::Error;
        let left = hits_left(&message.payload)?;
        let host = Ping::host();
        let text = format!("ping ({left} left) from `{}`", message.source);
        let _ = host
            .logging()
            .log(host::logging::Level::Info, "ping", &text);
        if left == 0 {
            return Ok(());
        }
        let next = (left - 1).to_string();
        host.messaging()
            .publish(TO_PONG, next.as_bytes())
            .map_err(|e| Error::Other(e.to_string()))
    }
}

/// The payload as a number of hits.
fn hits_left(payload: &[u8]) -> Result<u32, guest::handler::Error> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| {
            guest::handler::Error::InvalidInput(format!(
                "expected a number of hits, got {:?}",
                String::from_utf8_lossy(payload)
            ))
        })
}
