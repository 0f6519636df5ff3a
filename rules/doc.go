// Package rules owns fraud rules and the authorization decision: rules as
// data (YAML or JSON, conditions in CEL compiled once into Go), compiled onto
// the lookback windows of package stream; the Authorizer, which decides about
// a transaction on live windows with the candidate counted in, records the
// transaction and its decision in one durable append, and only then counts
// it; and the rule set's history as events in the log.
package rules
