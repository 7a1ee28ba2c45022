//! `pong`: returns the ball. A message on `ball.to-pong` (the hits left)
//! is logged and, while hits are left, sent back to `ping` on
//! `ball.to-ping` with one hit less. When no hit is left, `pong` tries to
//! announce the end on `game.over`: it declares that capability as
//! `optional` and `policy.toml` does not grant it, so the host denies the
//! call and `pong` logs the refusal instead.

#[airssys::component(
    requires = [
        "msg:subscribe:ball.to-pong",
        "msg:publish:ball.to-ping",
        "log:write",
    ],
    optional = ["msg:publish:game.over"],
)]
struct Pong;

/// Where the ball goes next.
const TO_PING: &str = "ball.to-ping";
/// Announces the end of the game (not granted by `policy.toml`).
const GAME_OVER: &str = "game.over";

impl guest::Lifecycle for Pong {}

impl guest::Handler for Pong {
    fn handle_message(message: guest::handler::Message) -> Result<(), guest::handler::Error> {
        use guest::handler::Error;
        let left = hits_left(&message.payload)?;
        let host = Pong::host();
        let log = |level, text: &str| {
            let _ = host.logging().log(level, "pong", text);
        };
        log(
            host::logging::Level::Info,
            &format!("pong ({left} left) from `{}`", message.source),
        );
        if left > 0 {
            let next = (left - 1).to_string();
            return host
                .messaging()
                .publish(TO_PING, next.as_bytes())
                .map_err(|e| Error::Other(e.to_string()));
        }
        // The game is over. Announcing it is optional: a refusal is logged,
        // not returned, so the host does not retry the message.
        if let Err(error) = host.messaging().publish(GAME_OVER, b"pong") {
            log(
                host::logging::Level::Warn,
                &format!("cannot announce the end: {}", reason(&error)),
            );
        }
        Ok(())
    }
}

/// The host's explanation of a refused call.
fn reason(error: &host::messaging::Error) -> &str {
    use host::messaging::Error;
    match error {
        Error::Denied(m)
        | Error::InvalidInput(m)
        | Error::NotFound(m)
        | Error::Timeout(m)
        | Error::QuotaExceeded(m)
        | Error::Remote(m)
        | Error::Other(m) => m,
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
