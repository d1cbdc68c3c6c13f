// Ground truth on the shipped organism (README, "Interventions"): zeroing the features labelled
// pending_sg at the last token of singular-subject prompts, or steering the subject with a
// subject_pl feature, flips the verb's agreement; controls of the same activation do not. The
// margins sit between the measured values (in the comments) and what would mean the labels lie.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureInterventions } from '../../scripts/claims/intervene.ts';

test('the organism: zeroing pending_sg and steering subject_pl flip agreement, controls do not', async () => {
  const m = await measureInterventions();
  assert.equal(m['zero.n'], 300);
  assert.ok(m['zero.before'] > 5, `clean logit diff ${m['zero.before']} (measured 7.39)`);
  // Zeroing: measured −2.83 and 100% flipped; a sign change on nearly every prompt is the claim.
  assert.ok(m['zero.after'] < -1, `after zeroing pending_sg: ${m['zero.after']}`);
  assert.ok(m['zero.flipped'] >= 95, `flipped ${m['zero.flipped']}%`);
  // P(" is") 36.0% → 1.2%, P(" are") 0.02% → 20.1%: probability moves from " is" to " are".
  assert.ok(m['zero.is.after'] < m['zero.is.before'] / 5, 'P(" is") falls');
  assert.ok(
    m['zero.are.after'] > 10 && m['zero.are.after'] > m['zero.is.after'],
    'P(" are") rises',
  );
  // The control removes the same activation (measured 6.05, none flipped): the singular verb stays.
  assert.ok(m['zero.control.after'] > 4, `control: ${m['zero.control.after']}`);
  assert.ok(m['zero.control.flipped'] <= 2, `control flipped ${m['zero.control.flipped']}%`);
  // Steering: measured −2.62, all flipped; 10 random features of the same α: 6.64–7.59, none.
  assert.ok(m['steer.after'] < -1, `after steering: ${m['steer.after']}`);
  assert.ok(m['steer.flipped'] >= 95, `steering flipped ${m['steer.flipped']}%`);
  assert.ok(m['steer.control.min'] > 4, `steering control min ${m['steer.control.min']}`);
  assert.ok(
    m['steer.control.flipped'] <= 2,
    `steering control flipped ${m['steer.control.flipped']}%`,
  );
});
