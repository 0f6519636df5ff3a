// Package api holds the types of Strata's HTTP API as they travel on the
// wire (JSON), shared by the server and the Go client, and the one error
// catalog: every error the API returns has a stable code, an HTTP status
// and a message, and maps back to the Go sentinel errors callers act on.
package api
