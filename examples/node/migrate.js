// The sample app's migration, run by `shipper deploy --migrate '["node",
// "migrate.js"]'` before the commit's pods roll out (and by promote
// against production's database). It only adds (expand/contract:
// docs/database.md), so it can run again. `node migrate.js broken` is a
// migration that fails, for the tests.
'use strict';

const { query } = require('./pg');

async function main() {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('no DATABASE_URL');
  const steps = ['CREATE TABLE IF NOT EXISTS visits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())'];
  if (process.argv[2] === 'broken') steps.push('ALTER TABLE no_such_table ADD COLUMN x int');
  console.log(`migrating ${new URL(url).pathname.slice(1)}: ${steps.length} step(s)`);
  await query(url, 'BEGIN', ...steps, 'COMMIT');
  console.log('migrated');
}

main().catch((err) => {
  console.error(`migration failed: ${err.message}`);
  process.exit(1);
});
