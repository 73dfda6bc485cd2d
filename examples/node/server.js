// shipper's Node.js sample app, the twin of examples/hello: "/" answers a
// random Docker-style name (distracted_clarke), "/version" the short commit
// SHA from APP_VERSION, "/visits" counts visits in its DATABASE_URL, and
// every response carries "env: node-<version>". Standard library only
// (pg.js speaks PostgreSQL's protocol), so the image needs no node_modules.
'use strict';

const http = require('node:http');
const { query } = require('./pg');

const adjectives = ['admiring', 'brave', 'busy', 'clever', 'distracted', 'eager', 'ecstatic', 'elegant',
  'focused', 'gallant', 'happy', 'hopeful', 'jolly', 'keen', 'laughing', 'modest', 'nostalgic', 'peaceful',
  'quirky', 'relaxed', 'serene', 'sharp', 'stoic', 'tender', 'upbeat', 'vibrant', 'wizardly', 'zealous'];
const names = ['albattani', 'babbage', 'bohr', 'clarke', 'curie', 'darwin', 'einstein', 'euler', 'feynman',
  'galileo', 'goldberg', 'hopper', 'hypatia', 'kepler', 'knuth', 'lamarr', 'lovelace', 'mccarthy', 'meitner',
  'newton', 'noether', 'pasteur', 'ritchie', 'shannon', 'thompson', 'turing', 'wozniak', 'yonath'];

const pick = (list) => list[Math.floor(Math.random() * list.length)];

function randomName() {
  return `${pick(adjectives)}_${pick(names)}`;
}

function handler(req, res) {
  res.setHeader('env', `node-${process.versions.node}`);
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  const path = new URL(req.url, 'http://localhost').pathname;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end('method not allowed\n');
  } else if (path === '/') {
    res.end(`${randomName()}\n`);
  } else if (path === '/version') {
    res.end(`${process.env.APP_VERSION || 'unknown'}\n`);
  } else if (path === '/visits') {
    visits(res);
  } else {
    res.writeHead(404).end('not found\n');
  }
}

// visits counts a visit in the commit's database (DATABASE_URL, which
// shipper gives each preview: shipper deploy --database-url) and answers
// how many it holds; the table is the migration's (migrate.js).
function visits(res) {
  const url = process.env.DATABASE_URL;
  if (!url) {
    res.writeHead(503).end('no database (DATABASE_URL)\n');
    return;
  }
  query(url, 'INSERT INTO visits DEFAULT VALUES', 'SELECT count(*) FROM visits').then(
    (rows) => res.end(`${rows[0][0]}\n`),
    (err) => res.writeHead(500).end(`database: ${err.message}\n`));
}

module.exports = { handler, randomName };

if (require.main === module) {
  const port = Number(process.env.PORT) || 8080;
  const server = http.createServer(handler);
  server.listen(port, '0.0.0.0', () => {
    console.log(`node ${process.env.APP_VERSION || 'unknown'} listening on 0.0.0.0:${port}`);
  });
  // Kubernetes stops a pod with SIGTERM; node would ignore it as PID 1.
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
