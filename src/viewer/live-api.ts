// `sfc view --live`: the JSON the page sends to POST /api/intervene and /api/activations, and what
// the engine answers. The viewer never runs the model: the CLI injects a LiveEngine (built on
// src/steer/) and the server only validates, queues and routes. Plain JSON types, no engine types.

import { z } from 'zod';

/** Bodies larger than this are refused before they are read whole. */
export const MAX_BODY_BYTES = 64 * 1024;

const positionsSchema = z.union([
  z.object({ kind: z.literal('list'), positions: z.array(z.number().int()).min(1).max(4096) }),
  z.object({ kind: z.literal('all') }),
  z.object({ kind: z.literal('all+generated') }),
]);

const opSchema = z.union([
  z.object({ kind: z.literal('zero') }),
  z.object({ kind: z.literal('mean') }),
  z.object({ kind: z.literal('set'), value: z.number().finite() }),
  z.object({ kind: z.literal('scale'), factor: z.number().finite() }),
  z.object({
    kind: z.literal('steer'),
    alpha: z.number().finite(),
    unit: z.enum(['absolute', 'max']),
  }),
]);

/** An intervention as `sfc intervene --do` text (SITE:FEATURE[@POS]=OP) or as the parsed object. */
export const liveInterventionSchema = z.union([
  z.string().min(1).max(200),
  z
    .object({
      site: z.string().min(1).max(64),
      target: z.union([
        z.object({ kind: z.literal('feature'), index: z.number().int().nonnegative() }),
        z.object({ kind: z.literal('error') }),
      ]),
      positions: positionsSchema,
      op: opSchema,
    })
    .strict(),
]);

const runFields = {
  /** The text to run (tokenized as `sfc intervene --prompt` does), or token ids run as given. */
  prompt: z.string().min(1).max(4000).optional(),
  ids: z.array(z.number().int().nonnegative()).min(1).max(4096).optional(),
  interventions: z.array(liveInterventionSchema).max(64),
};

const oneInput = (b: { prompt?: string; ids?: number[] }) =>
  (b.prompt === undefined) !== (b.ids === undefined);
const oneInputMessage = { message: 'give exactly one of "prompt" (text) or "ids" (token ids)' };

export const interveneRequestSchema = z
  .object({
    ...runFields,
    top: z.number().int().min(1).max(100).default(10),
    /** Tokens generated with and without (0: none); bounded so one request stays short. */
    generate: z.number().int().min(0).max(64).default(0),
    temperature: z.number().finite().min(0).max(100).default(0),
    seed: z.number().int().default(1),
  })
  .strict()
  .refine(oneInput, oneInputMessage);

export const activationsRequestSchema = z
  .object({
    ...runFields,
    /** Circuit nodes to read: a feature index, or null for the site's error node. */
    nodes: z
      .array(
        z
          .object({
            site: z.string().min(1).max(64),
            feature: z.number().int().nonnegative().nullable(),
            position: z.number().int().nonnegative(),
          })
          .strict(),
      )
      .min(1)
      .max(5000),
  })
  .strict()
  .refine(oneInput, oneInputMessage);

export type LiveIntervention = z.infer<typeof liveInterventionSchema>;
export type InterveneRequest = z.infer<typeof interveneRequestSchema>;
export type ActivationsRequest = z.infer<typeof activationsRequestSchema>;

export interface InterveneResponse {
  /** The prompt's tokens as the model saw them (ids and their strings). */
  ids: number[];
  tokens: string[];
  /** The interventions as applied, described. */
  interventions: string[];
  /** Top next tokens by the larger of their two probabilities. */
  top: { id: number; token: string; before: number; after: number; logitChange: number }[];
  kl: number;
  generated: { without: string; with: string } | null;
}

export interface ActivationsResponse {
  ids: number[];
  tokens: string[];
  /** Each requested node's value without and with the interventions, in request order. */
  before: number[];
  after: number[];
}

/**
 * What the CLI gives the server. A thrown Error is the requester's fault (a site the model does
 * not have, a position past the prompt...) and its message is sent back with 400.
 */
export interface LiveEngine {
  intervene(request: InterveneRequest): Promise<InterveneResponse> | InterveneResponse;
  activations(request: ActivationsRequest): Promise<ActivationsResponse> | ActivationsResponse;
}

/** A zod error as one line: "path: message; path: message". */
export function validationMessage(error: z.ZodError): string {
  return error.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/**
 * Runs jobs one at a time, in arrival order (the engine has one set of buffers). A job that has
 * not finished `timeoutMs` after it was queued is answered with a timeout; one already running
 * cannot be stopped (the engine runs on this thread), so the next waits for it.
 */
export class EngineQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(
    readonly timeoutMs: number,
    readonly maxWaiting = 8,
  ) {}

  /** How many jobs are queued or running. */
  get pending(): number {
    return this.waiting;
  }

  run<T>(job: () => Promise<T> | T): Promise<T> {
    if (this.waiting >= this.maxWaiting)
      return Promise.reject(
        new QueueError(503, `the engine is busy with ${this.waiting} requests; try again`),
      );
    this.waiting++;
    let timedOut = false;
    const result = this.tail.then(() => {
      if (timedOut) throw new QueueError(504, 'timed out while waiting for the engine');
      return job();
    });
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    void this.tail.then(() => this.waiting--);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        timedOut = true;
        reject(
          new QueueError(
            504,
            `the engine did not answer within ${(this.timeoutMs / 1000).toFixed(1)} s (shorter prompt, fewer generated tokens or fewer nodes?)`,
          ),
        );
      }, this.timeoutMs);
      result.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}

/** A queue refusal or timeout, with the HTTP status it is answered with. */
export class QueueError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
