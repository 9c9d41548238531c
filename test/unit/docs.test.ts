/** The reference page's errno table is the code's table, row for row. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ERRNO_TO_NTSTATUS, ntStatusName } from '../../lib/wsk/ntstatus';

test('docs/api.md lists ERRNO_TO_NTSTATUS exactly', () => {
  const text = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'api.md'), 'utf8');
  const rows = [...text.matchAll(/^\| (E[A-Z]+) \| (STATUS_[A-Z_]+) \| (0x[0-9A-F]{8}) \|$/gm)];
  const documented = Object.fromEntries(rows.map((m) => [m[1], [m[2], Number(m[3])]]));
  const actual = Object.fromEntries(Object.entries(ERRNO_TO_NTSTATUS).map(([code, status]) => [code, [ntStatusName(status), status]]));
  expect(documented).toEqual(actual);
});
