// The two evaluation plots (faithfulness and completeness against circuit size, one line per
// series) as Vega-Lite specs, rendered to SVG headlessly (no browser, no canvas).

import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { Evaluation } from './faithfulness.ts';

export type CurveKind = 'faithfulness' | 'completeness';

/** A Vega-Lite line chart: nodes in the circuit (log scale) against the score, per series. */
export function curveSpec(
  evaluation: Evaluation,
  kind: CurveKind,
  subtitle = '',
): vegaLite.TopLevelSpec {
  // A log axis has no 0, and an undefined score (F(M) = F(∅)) has no place on the plot.
  const values = evaluation.series.flatMap((s) =>
    s.points
      .filter((p) => p.nodes > 0 && Number.isFinite(p[kind]))
      .map((p) => ({ series: s.label, nodes: p.nodes, threshold: p.threshold, score: p[kind] })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: kind === 'faithfulness' ? 'Faithfulness of the circuit' : 'Completeness of the circuit',
      subtitle,
    },
    width: 420,
    height: 280,
    data: { values },
    layer: [
      {
        mark: { type: 'rule', strokeDash: [4, 4], color: '#888' },
        encoding: { y: { datum: kind === 'faithfulness' ? 1 : 0 } },
      },
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'nodes',
            type: 'quantitative',
            scale: { type: 'log' },
            title:
              kind === 'faithfulness' ? 'nodes in the circuit' : 'nodes removed (circuit size)',
          },
          y: { field: 'score', type: 'quantitative', title: kind },
          color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 300 } },
          tooltip: [
            { field: 'series', type: 'nominal' },
            { field: 'threshold', type: 'quantitative' },
            { field: 'nodes', type: 'quantitative' },
            { field: 'score', type: 'quantitative', format: '.3f' },
          ],
        },
      },
    ],
  };
}

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
