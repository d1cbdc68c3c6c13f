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

// The generic engine (transformer.ts) adds attn_z_L: the heads' outputs concatenated per token as
// they enter the attention's output projection (TransformerLens' hook_z, flattened), [B*T, H*Dh].

export type TransformerSiteKind = SiteKind | 'attn_z';

export interface TransformerSiteRef {
  name: string;
  kind: TransformerSiteKind;
  layer: number;
}

/** Every site of the generic engine, in computation order. */
export function transformerSiteNames(numLayers: number): string[] {
  const names = ['embed'];
  for (let layer = 0; layer < numLayers; layer++)
    names.push(`attn_z_${layer}`, `attn_${layer}`, `mlp_${layer}`, `resid_${layer}`);
  return names;
}

/** Parses a site of the generic engine, with an error that lists what is valid. */
export function parseTransformerSite(name: string, numLayers: number): TransformerSiteRef {
  if (name === 'embed') return { name, kind: 'embed', layer: -1 };
  const match = /^(attn_z|attn|mlp|resid)_(\d+)$/.exec(name);
  const layer = match ? Number(match[2]) : NaN;
  if (!match || layer >= numLayers)
    throw new Error(
      `unknown site "${name}": expected embed, or attn_z_L, attn_L, mlp_L, resid_L with L in 0..${numLayers - 1}`,
    );
  return { name, kind: match[1] as TransformerSiteKind, layer };
}
