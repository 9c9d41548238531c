/**
 * `bench --chart FILE`: datagrams/s per contender and payload size as a grouped bar chart,
 * specified in vega-lite, compiled to vega and rendered headless to SVG (no browser, no
 * canvas); PNG through the optional @resvg/resvg-wasm (WebAssembly, no native build) with a
 * system font where one is found.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Summary } from './report';

/** What the chart's title says about the run. */
export interface ChartMeta {
  node: string;
  kernel: string;
  count: number;
  reps: number;
  batch: number;
  family: 4 | 6;
}

/** vega and vega-lite are ES modules: loaded with a real import(), which CommonJS output keeps only this way. */
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

async function load<T>(name: string, why: string): Promise<T> {
  let resolved: string;
  try {
    resolved = require.resolve(name);
  } catch {
    throw new Error(`${why} needs the package ${name}, which is not installed (npm install ${name})`);
  }
  return await importModule(pathToFileURL(resolved).href) as T;
}

interface VegaLite {
  compile(spec: object): { spec: object };
}
interface Vega {
  parse(spec: object): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}
interface Resvg {
  initWasm(module: Uint8Array): Promise<void>;
  Resvg: new (svg: string, options: object) => { render(): { asPng(): Uint8Array }; free(): void };
}

/** The vega-lite specification of the chart (exported for the tests). */
export function chartSpec(summaries: readonly Summary[], sizes: readonly number[], meta: ChartMeta): object {
  // Contenders in the order of the bench's tables (the summaries' order), not alphabetical.
  const order = [...new Set(summaries.map((s) => s.name))];
  const values = summaries.map((s) => ({ size: `${s.size} B`, contender: s.name, datagramsPerSecond: Math.round(s.datagramsPerSecond) }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'wsk-dgram bench: datagrams sent per second (median)',
      subtitle: `${meta.count.toLocaleString('en-US')} datagrams per run, ${meta.reps} reps, batch ${meta.batch}, ` +
        `loopback IPv${meta.family}; Node ${meta.node}, Linux ${meta.kernel}`,
    },
    data: { values },
    width: { step: 14 },
    height: 320,
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'size', type: 'ordinal', title: 'payload size', sort: sizes.map((s) => `${s} B`), axis: { labelAngle: 0 } },
      xOffset: { field: 'contender', type: 'nominal', sort: order },
      y: { field: 'datagramsPerSecond', type: 'quantitative', title: 'datagrams/s', axis: { format: '~s' } },
      color: { field: 'contender', type: 'nominal', title: 'contender', sort: order, scale: { scheme: 'tableau20' },
        legend: { labelLimit: 400 } },
    },
    config: { font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', background: 'white' },
  };
}

/** Renders the chart's SVG text. */
export async function chartSvg(summaries: readonly Summary[], sizes: readonly number[], meta: ChartMeta): Promise<string> {
  const vegaLite = await load<VegaLite>('vega-lite', '--chart');
  const vega = await load<Vega>('vega', '--chart');
  const view = new vega.View(vega.parse(vegaLite.compile(chartSpec(summaries, sizes, meta)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Fonts resvg can draw the labels with (it has none of its own). */
const FONT_FILES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf',
  '/System/Library/Fonts/Supplemental/Arial.ttf',
  'C:\\Windows\\Fonts\\arial.ttf',
];

/** Writes the chart to `file`: SVG, or PNG when the name ends in .png. */
export async function writeChart(file: string, summaries: readonly Summary[], sizes: readonly number[], meta: ChartMeta): Promise<void> {
  const svg = await chartSvg(summaries, sizes, meta);
  if (!/\.png$/i.test(file)) {
    fs.writeFileSync(file, svg);
    return;
  }
  // A CommonJS package: import() would hand back module.exports as `default`.
  const loaded = await load<Resvg & { default?: Resvg }>('@resvg/resvg-wasm', 'a PNG chart (use FILE.svg otherwise)');
  const resvg = typeof loaded.initWasm === 'function' ? loaded : loaded.default!;
  await resvg.initWasm(fs.readFileSync(path.join(path.dirname(require.resolve('@resvg/resvg-wasm')), 'index_bg.wasm')));
  const fontBuffers = FONT_FILES.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f));
  if (fontBuffers.length === 0) process.stderr.write('bench: no system font found for the PNG: its labels are missing (SVG has them)\n');
  const renderer = new resvg.Resvg(svg, { font: { fontBuffers, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'zoom', value: 2 } });
  try {
    fs.writeFileSync(file, renderer.render().asPng());
  } finally {
    renderer.free();
  }
}
