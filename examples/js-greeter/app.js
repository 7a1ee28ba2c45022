// js-greeter: greets, and remembers names, in JavaScript.
//
// - `init` prints a line (console.log: the component's stdout).
// - A request `hello NAME` answers `hello, NAME!` and logs it through
//   airssys:core/logging (`log:write`, granted).
// - A request `remember NAME` stores the name in the bucket `names`: it
//   needs `kv:write:names/*`, which Component.toml lists as optional and
//   policy.toml does not grant, so the host refuses it with `denied`.
import { log } from 'airssys:core/logging@1.0.0';
import { open } from 'airssys:core/storage@1.0.0';

const text = new TextDecoder();
const bytes = new TextEncoder();

export const lifecycle = {
  init(_config) {
    console.log('js-greeter ready');
  },
  shutdown() {},
};

export const handler = {
  handleMessage(_message) {},
  handleRequest(_source, payload) {
    const request = text.decode(payload);
    const space = request.indexOf(' ');
    const verb = space < 0 ? request : request.slice(0, space);
    const name = space < 0 ? '' : request.slice(space + 1);
    try {
      if (verb === 'hello') {
        const answer = `hello, ${name}!`;
        log('info', 'greeter', answer);
        return bytes.encode(answer);
      }
      if (verb === 'remember') {
        open('names').set(name, bytes.encode('1'));
        return bytes.encode(`remembered ${name}`);
      }
    } catch (e) {
      // A host error: its variant (`denied`, ...) is passed on.
      const error = e.payload ?? { tag: 'other', val: String(e) };
      if (error.tag === 'denied') {
        throw { tag: 'denied', val: error.val };
      }
      throw { tag: 'other', val: error.val };
    }
    throw { tag: 'invalid-input', val: 'send `hello NAME` or `remember NAME`' };
  },
};
