// A PostgreSQL client small enough to read, on Node's standard library
// only (the sample app ships no node_modules): one connection per query
// list, the simple query protocol, SCRAM-SHA-256 or cleartext password
// authentication, no TLS. A real app uses the `pg` package; this one
// serves the sample's /visits and its migration.
'use strict';

const net = require('node:net');
const crypto = require('node:crypto');

// query connects to url (postgres://user:password@host:port/db), runs each
// SQL string in turn and resolves to the rows of the last one (arrays of
// text values, NULL as null). A server error rejects with its message.
function query(url, ...statements) {
  const u = new URL(url);
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  const database = decodeURIComponent(u.pathname.slice(1)) || user;
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port) || 5432, u.hostname);
    let buf = Buffer.alloc(0);
    let scram = null;
    let rows = [];
    let pending = statements.slice();
    let failed = null;
    let done = false;
    const settle = (err, value) => {
      if (done) return;
      done = true;
      if (err) { sock.destroy(); reject(err); } else resolve(value);
    };
    const send = (type, body) => {
      const head = Buffer.alloc(type ? 5 : 4);
      let at = 0;
      if (type) { head.write(type, 0); at = 1; }
      head.writeInt32BE(body.length + 4, at);
      sock.write(Buffer.concat([head, body]));
    };
    const cstr = (s) => Buffer.from(s + '\0');
    const next = () => {
      if (failed || pending.length === 0) {
        send('X', Buffer.alloc(0));
        sock.end();
        return settle(failed, rows);
      }
      rows = [];
      send('Q', cstr(pending.shift()));
    };
    sock.on('error', (err) => settle(err));
    // A server that ends the connection (a refused login) sends no
    // ReadyForQuery.
    sock.on('close', () => settle(failed || new Error('connection closed by the server')));
    sock.on('connect', () => {
      const params = Buffer.concat([cstr('user'), cstr(user), cstr('database'), cstr(database), Buffer.from([0])]);
      const version = Buffer.alloc(4);
      version.writeInt32BE(196608); // protocol 3.0
      send('', Buffer.concat([version, params]));
    });
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const type = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, 1 + buf.readInt32BE(1));
        buf = buf.subarray(1 + buf.readInt32BE(1));
        switch (type) {
          case 'R':
            try {
              scram = authenticate(body, user, password, scram, send);
            } catch (err) {
              settle(err);
              return;
            }
            break;
          case 'D': rows.push(dataRow(body)); break;
          case 'E': failed = new Error(errorMessage(body)); break;
          case 'Z': next(); break;
          default: break; // parameters, row descriptions, completions, notices
        }
      }
    });
  });
}

// authenticate answers an Authentication message; it returns the SCRAM
// exchange's state.
function authenticate(body, user, password, scram, send) {
  const code = body.readInt32BE(0);
  switch (code) {
    case 0: return scram; // AuthenticationOk
    case 3: send('p', Buffer.from(password + '\0')); return scram; // cleartext
    case 10: { // SASL: SCRAM-SHA-256, without channel binding
      const nonce = crypto.randomBytes(18).toString('base64');
      const first = `n=,r=${nonce}`;
      const msg = Buffer.from('n,,' + first);
      const len = Buffer.alloc(4);
      len.writeInt32BE(msg.length);
      send('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), len, msg]));
      return { nonce, first };
    }
    case 11: { // SASLContinue: r=..,s=..,i=..
      const server = body.subarray(4).toString();
      const attrs = Object.fromEntries(server.split(',').map((kv) => [kv[0], kv.slice(2)]));
      if (!attrs.r.startsWith(scram.nonce)) throw new Error('SCRAM: bad server nonce');
      const salted = crypto.pbkdf2Sync(password, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = crypto.createHmac('sha256', salted).update('Client Key').digest();
      const storedKey = crypto.createHash('sha256').update(clientKey).digest();
      const withoutProof = `c=biws,r=${attrs.r}`;
      const auth = `${scram.first},${server},${withoutProof}`;
      const signature = crypto.createHmac('sha256', storedKey).update(auth).digest();
      const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i])).toString('base64');
      send('p', Buffer.from(`${withoutProof},p=${proof}`));
      return scram;
    }
    case 12: return scram; // SASLFinal (the server's signature, not checked here)
    default: throw new Error(`unsupported authentication method ${code}`);
  }
}

// dataRow decodes a DataRow's columns as text.
function dataRow(body) {
  const out = [];
  let at = 2;
  for (let n = body.readInt16BE(0); n > 0; n--) {
    const len = body.readInt32BE(at);
    at += 4;
    out.push(len < 0 ? null : body.subarray(at, at + len).toString());
    at += Math.max(len, 0);
  }
  return out;
}

// errorMessage is an ErrorResponse's severity, code and message.
function errorMessage(body) {
  const fields = {};
  for (let at = 0; at < body.length && body[at] !== 0;) {
    const end = body.indexOf(0, at + 1);
    fields[String.fromCharCode(body[at])] = body.subarray(at + 1, end).toString();
    at = end + 1;
  }
  return `${fields.S || 'ERROR'} ${fields.C || ''}: ${fields.M || 'unknown error'}`;
}

module.exports = { query };
