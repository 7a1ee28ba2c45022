"""py-counter: counts in the key-value bucket `counter`, in Python.

- `init` adds one to `counter/starts` and prints the count.
- A request `get` answers the count, `increment` adds one and answers the
  new count, `reset` deletes the key.

`reset` needs `kv:delete:counter/*`, which Component.toml lists as
`optional` and which policy.toml does not grant: the host refuses the
call with `denied`, and the component passes that on.
"""

from componentize_py_types import Err

from wit_world import exports
from wit_world.imports import storage
from wit_world.exports import handler, lifecycle

BUCKET = "counter"
KEY = "starts"


def read_count(bucket: storage.Bucket) -> int:
    value = bucket.get(KEY)
    return int.from_bytes(value, "little") if value else 0


def add_one(bucket: storage.Bucket) -> int:
    count = read_count(bucket) + 1
    bucket.set(KEY, count.to_bytes(8, "little"))
    return count


def message_of(error: Err) -> str:
    # Every storage error case carries its text in `value`.
    return str(getattr(error.value, "value", error.value))


class Lifecycle(exports.Lifecycle):
    def init(self, config) -> None:
        try:
            starts = add_one(storage.open(BUCKET))
        except Err as e:
            raise Err(lifecycle.Error_Other(message_of(e)))
        # stdout: shown as a log record of the component (`log:write`).
        print(f"started {starts} time(s)")

    def shutdown(self) -> None:
        pass


class Handler(exports.Handler):
    def handle_message(self, message) -> None:
        pass

    def handle_request(self, source: str, payload: bytes) -> bytes:
        try:
            bucket = storage.open(BUCKET)
            if payload == b"get":
                answer = str(read_count(bucket))
            elif payload == b"increment":
                answer = str(add_one(bucket))
            elif payload == b"reset":
                answer = "reset" if bucket.delete(KEY) else "nothing to reset"
            else:
                raise Err(handler.Error_InvalidInput("send `get`, `increment` or `reset`"))
        except Err as e:
            if isinstance(e.value, storage.Error_Denied):
                # The host's text already starts with "denied: ".
                text = e.value.value.removeprefix("denied: ")
                raise Err(handler.Error_Denied(text))
            if isinstance(e.value, storage.Error_Other | storage.Error_InvalidInput
                          | storage.Error_QuotaExceeded):
                raise Err(handler.Error_Other(message_of(e)))
            raise
        return answer.encode()
