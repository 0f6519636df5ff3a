// Package config is strata serve's configuration: a YAML file whose every
// option is also a flag and an environment variable (flag over variable
// over file over default), and the API tokens, which only the file holds.
package config

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is what strata serve runs with.
type Config struct {
	// Addr is where the API listens (127.0.0.1:7070).
	Addr string `yaml:"addr"`
	// Data is the log's directory (./strata-data).
	Data string `yaml:"data"`
	// MaxBody caps a request body, in bytes (8 MiB).
	MaxBody int64 `yaml:"max_body"`
	// TLS serves HTTPS when both files are given.
	TLS TLS `yaml:"tls"`
	// Tokens are the API tokens; none means loopback-only access.
	Tokens []Token `yaml:"tokens"`
	// Demo starts generators of orders and card transactions.
	Demo bool `yaml:"demo"`
	// Postgres, when set, is the PostgreSQL database that holds the log
	// instead of the data directory (which keeps the read models, the
	// rules' checkpoint and the jobs): postgres://USER@HOST:PORT/DB.
	Postgres string `yaml:"postgres"`
	// PostgresSchema is the schema the log's tables go in (public).
	PostgresSchema string `yaml:"postgres_schema"`
	// Cluster makes this server one of several nodes on the PostgreSQL
	// log: the read models, the projections' definitions, the snapshots and
	// the rules' checkpoint go in PostgreSQL too (ClusterSchema), and the
	// projections' partitions are shared among the nodes by leases.
	Cluster bool `yaml:"cluster"`
	// ClusterSchema holds what the nodes share beside the log
	// (PostgresSchema + "_cluster").
	ClusterSchema string `yaml:"cluster_schema"`
	// Node names this node among the others (host and process id).
	Node string `yaml:"node"`
	// Partitions cuts each projection into this many shares, the unit
	// that moves between nodes (1: each projection whole). More than one
	// needs projections whose rows are updated commutatively across keys.
	Partitions int `yaml:"partitions"`
	// LeaseTTL is how long a node's share of the work waits after the node
	// stopped renewing its leases (died, or lost the database) before
	// another node takes it over (10s).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Advertise is the URL the other nodes reach this one at: the fraud
	// rules' routes go to the node that leads them (the listener's
	// address, with the host name for 0.0.0.0).
	Advertise string `yaml:"advertise"`
}

// TLS names a certificate and its key, PEM files.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Scope is what a token may do.
type Scope string

const (
	ScopeRead   Scope = "read"   // reads, subscriptions, the rule set, metrics
	ScopeAppend Scope = "append" // appends and authorizations (which append)
	ScopeAdmin  Scope = "admin"  // rule changes; implies the others
)

// Token is one API token. The file holds the SHA-256 of the secret, not
// the secret: `strata token new` prints both.
type Token struct {
	Name   string  `yaml:"name"`
	SHA256 string  `yaml:"sha256"`
	Scopes []Scope `yaml:"scopes"`
	// Streams, when set, restricts the token to streams whose names start
	// with one of these prefixes.
	Streams []string `yaml:"streams"`
}

// Defaults for what the file, flags and variables leave unset.
const (
	DefaultAddr    = "127.0.0.1:7070"
	DefaultData    = "./strata-data"
	DefaultMaxBody = 8 << 20
)

// ErrConfig is wrapped by every error about a configuration's content.
var ErrConfig = errors.New("config")

// Load reads a configuration file. Unknown keys are errors: a misspelt
// option silently ignored is worse than a refusal.
func Load(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
		return c, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks what the file says, naming the field at fault.
func (c *Config) Validate() error {
	if c.MaxBody < 0 {
		return fmt.Errorf("%w: max_body %d is negative", ErrConfig, c.MaxBody)
	}
	if c.Cluster && c.Postgres == "" {
		return fmt.Errorf("%w: cluster: the nodes share a PostgreSQL log; give postgres too", ErrConfig)
	}
	if c.LeaseTTL < 0 || c.LeaseTTL > 0 && c.LeaseTTL < 100*time.Millisecond {
		return fmt.Errorf("%w: lease_ttl %v: want at least 100ms", ErrConfig, c.LeaseTTL)
	}
	if c.Partitions < 0 || c.Partitions > 1024 {
		return fmt.Errorf("%w: partitions %d: want 1 to 1024", ErrConfig, c.Partitions)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("%w: tls: give both cert and key, or neither", ErrConfig)
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		switch {
		case t.Name == "":
			return fmt.Errorf("%w: %s.name is empty", ErrConfig, at)
		case seen[t.Name]:
			return fmt.Errorf("%w: %s.name %q is used twice", ErrConfig, at, t.Name)
		}
		seen[t.Name] = true
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%w: %s.sha256: want the 64 hex digits `strata token new` prints", ErrConfig, at)
		}
		if len(t.Scopes) == 0 {
			return fmt.Errorf("%w: %s.scopes is empty: want read, append or admin", ErrConfig, at)
		}
		for j, s := range t.Scopes {
			if !slices.Contains([]Scope{ScopeRead, ScopeAppend, ScopeAdmin}, s) {
				return fmt.Errorf("%w: %s.scopes[%d] %q: want read, append or admin", ErrConfig, at, j, s)
			}
		}
		for j, p := range t.Streams {
			if p == "" {
				return fmt.Errorf("%w: %s.streams[%d] is empty", ErrConfig, at, j)
			}
		}
	}
	return nil
}

// Has reports whether t grants scope (admin grants all).
func (t *Token) Has(scope Scope) bool {
	return slices.Contains(t.Scopes, scope) || slices.Contains(t.Scopes, ScopeAdmin)
}

// Allows reports whether t may touch stream.
func (t *Token) Allows(stream string) bool {
	if len(t.Streams) == 0 {
		return true
	}
	for _, p := range t.Streams {
		if strings.HasPrefix(stream, p) {
			return true
		}
	}
	return false
}

// NewSecret is a fresh random token and the SHA-256 the file holds.
func NewSecret() (secret, hash string) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	secret = "strata_" + hex.EncodeToString(b[:])
	return secret, Hash(secret)
}

// Hash is the SHA-256 of a secret, in hex.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
