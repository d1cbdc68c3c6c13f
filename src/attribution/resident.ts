// Which dictionaries discovery keeps in memory. Each step of a stage asks for the sites it works
// on (`hold`); a site no step needs any more is released to its source (`drop`) once more than
// `capacity` are resident, least recently used first. The capacity is the largest set one step
// needs (at least), so the peak is bounded by it whatever the number of sites. See
// docs/discover.md, "Memory".

import type { Dictionary } from '../sae/dictionary.ts';

/** Where discovery gets dictionaries: an SAE library (src/sae/library.ts), or a map in memory. */
export interface DictionarySource {
  /** The site's dictionary, loaded if it is not in memory. */
  get(site: string): Dictionary;
  /** Frees the site's dictionary (it is loaded again on the next get); absent: nothing is freed. */
  drop?(site: string): void;
  /** The site's number of features as its files declare it, without loading it; null: unknown. */
  declaredWidth?(site: string): number | null;
}

/** A plain function (dictionaries already in memory) or a source that can load and free them. */
export type Dictionaries = ((site: string) => Dictionary) | DictionarySource;

export function dictionarySource(dictionaries: Dictionaries): DictionarySource {
  return typeof dictionaries === 'function' ? { get: dictionaries } : dictionaries;
}

export class ResidentDictionaries {
  /** Resident sites, least recently used first. */
  private order: string[] = [];
  private needed = new Set<string>();
  /** Most dictionaries resident at once. */
  peak = 0;
  /** Times a site was taken from the source while not resident (loads, for a library). */
  loads = 0;
  capacity: number;

  constructor(
    private readonly source: DictionarySource,
    capacity = 1,
  ) {
    this.capacity = capacity;
  }

  /** The sites the next step works on: resident until the next hold. */
  hold(sites: string[]): void {
    this.needed = new Set(sites);
    for (const site of sites) this.touch(site);
    this.evict();
  }

  /** The site's dictionary; the site is held until the next hold. */
  get(site: string): Dictionary {
    this.needed.add(site);
    this.touch(site);
    this.evict();
    return this.source.get(site);
  }

  /** Releases every resident dictionary. */
  releaseAll(): void {
    const drop = this.source.drop?.bind(this.source);
    if (!drop) return; // a source that cannot free keeps everything it gave
    for (const site of this.order) drop(site);
    this.order = [];
    this.needed.clear();
  }

  private touch(site: string): void {
    const i = this.order.indexOf(site);
    if (i >= 0) this.order.splice(i, 1);
    else this.loads++;
    this.order.push(site);
  }

  private evict(): void {
    // A source that cannot free keeps everything it gave.
    const drop = this.source.drop?.bind(this.source);
    for (let i = 0; drop && this.order.length > this.capacity && i < this.order.length;) {
      const site = this.order[i];
      if (this.needed.has(site)) i++;
      else {
        this.order.splice(i, 1);
        drop(site);
      }
    }
    this.peak = Math.max(this.peak, this.order.length);
  }
}
