// The names a researcher uses for places in the model: the same in the API, the CLI, circuit
// files and the viewer. `embed` is the embedding output; `attn_L` and `mlp_L` are block outputs
// before they join the residual; `resid_L` is the residual stream after layer L.

export type SiteKind = 'embed' | 'attn' | 'mlp' | 'resid';

export interface SiteRef {
  name: string;
  kind: SiteKind;
  /** Layer index; -1 for the embedding. */
  layer: number;
}

/** Every site of a model with `numLayers` layers, in computation order. */
export function siteNames(numLayers: number): string[] {
  const names = ['embed'];
  for (let layer = 0; layer < numLayers; layer++) {
    names.push(`attn_${layer}`, `mlp_${layer}`, `resid_${layer}`);
  }
  return names;
}

/** Parses a site name, with an error that lists what is valid for this model. */
export function parseSite(name: string, numLayers: number): SiteRef {
  if (name === 'embed') return { name, kind: 'embed', layer: -1 };
  const match = /^(attn|mlp|resid)_(\d+)$/.exec(name);
  const layer = match ? Number(match[2]) : NaN;
  if (!match || layer >= numLayers) {
    throw new Error(
      `unknown site "${name}": expected embed, or attn_L, mlp_L, resid_L with L in 0..${numLayers - 1}`,
    );
  }
  return { name, kind: match[1] as SiteKind, layer };
}
