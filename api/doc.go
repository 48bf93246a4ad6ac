// Package api holds what every signalbox program shares: the names that
// cross a process boundary, the payloads that carry them, and each
// integration's spec. It imports no connector, activity or workflow code, so
// the operator CLI links none of it (go list -deps ./signals).
//
// # Glossary
//
// One word, one meaning:
//
//   - integration: a named, owned flow of records from a source system to a
//     target system (lead-to-crm). Declared by its Spec; run by one workflow
//     type.
//   - spec: an integration's declaration — owner, fields with their owner and
//     rule, exceptions, who decides them. The card (signals describe), the
//     workflow and the workers read the same value.
//   - item: one record in one integration; one workflow ID,
//     "<integration>:<source key>". Its runs are re-syncs of the same item.
//   - source key (key): the record's identifier in its source; never personal data.
//   - system: an external system signalbox reads or writes — crm, stripe,
//     chat — or the one that owns a field (web-form, postgres). External
//     links name the target's system.
//   - source, target: the systems an integration reads from and writes to.
//   - task queue (queue): where Temporal hands out work. Workflows run on
//     "integrations"; each target's activities on its own queue (crm,
//     billing — Stripe's —, chat), which caps the rate the vendor allows;
//     crm-poll runs a poll's CRM reads beside the items' steps.
//   - target settings: a target's timeout, rate, concurrency and retry
//     window (SIGNALBOX_<TARGET>_*, config.Target), keyed by its queue.
//   - step: one external effect of an item, run as an activity under
//     retries; a step that fails for good raises an exception.
//   - exception: a situation that needs a person's judgment; the item waits,
//     Blocked (business) or Failed (technical), for a decision.
//   - decision: a person's answer to an exception: an action with actor
//     and reason.
//   - status: where an item stands (Statuses).
//   - error type: the class of a failure (ErrorType), decided once, where it
//     happens, and read wherever it is handled. Go error values are named
//     Err…; error types Error….
//   - baseline: the values both systems held at the last sync or settlement;
//     edits are judged against it.
//   - external ID: where an item's record lives in another system
//     (ExternalKey → ID), shown by the status query.
package api
