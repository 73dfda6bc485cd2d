'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const { test } = require('node:test');

const { handler } = require('../server');

function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ code: res.statusCode, body, env: res.headers.env }));
    }).on('error', reject);
  });
}

test('serves a name, the version and the env header', async (t) => {
  process.env.APP_VERSION = '7c77eb36';
  const server = http.createServer(handler).listen(0, '127.0.0.1');
  t.after(() => server.close());
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();

  const root = await get(port, '/');
  assert.equal(root.code, 200);
  assert.match(root.body, /^[a-z]+_[a-z]+\n$/);
  assert.equal(root.env, `node-${process.versions.node}`);
  assert.deepEqual(await get(port, '/version'), { code: 200, body: '7c77eb36\n', env: root.env });
  assert.equal((await get(port, '/nope')).code, 404);
});
