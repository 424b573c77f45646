// Package tokens is who may call the API: Ed25519-signed JWTs carrying a role, the keys
// that sign and verify them (files in PEM), and a verifier that remembers the tokens it has
// checked. The HTTP transport (handlers/httpapi) asks it; orderctl mints with it.
package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a caller may do; it travels in the token's "role" claim.
type Role string

// Roles that outside scripts rely on.
const (
	RoleCustomer Role = "customer" // acts only on subscriptions it owns (owner id = subject)
	RoleOperator Role = "operator"
	RolePayments Role = "payments"
	RoleFinance  Role = "finance" // read
	RoleAuditor  Role = "auditor" // read
)

// Roles lists every role.
var Roles = []Role{RoleCustomer, RoleOperator, RolePayments, RoleFinance, RoleAuditor}

// Audience is the "aud" every token must carry, so that a token minted for another
// service by the same issuer is not accepted here.
const Audience = "spaceorders"

// Principal is the authenticated caller.
type Principal struct {
	Subject string
	Role    Role
}

// Claims are the token's claims.
type Claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Tokens are Ed25519-signed JWTs (EdDSA): the API holds only public keys, so a stolen
// configuration cannot mint tokens; the issuer alone keeps the private key. Accepting a
// single algorithm also rules out algorithm-confusion attacks.
type Verifier struct {
	keys   jwt.VerificationKeySet
	parser *jwt.Parser
	now    func() time.Time

	// Tokens verified, by the SHA-256 of the token: a client sends the same token with
	// every request, and checking its signature again cost a tenth of orderd's CPU under
	// load. Only a token that passed every check enters, and it leaves at its expiry.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	p   Principal
	exp time.Time
}

// tokenCacheSize bounds the tokens remembered as verified.
const tokenCacheSize = 4096

// NewVerifier verifies tokens signed by any of keys (several allow key rotation).
func NewVerifier(keys ...ed25519.PublicKey) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("tokens: no public key")
	}
	set := jwt.VerificationKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k)
	}
	a := &Verifier{keys: set, now: time.Now, verified: map[[sha256.Size]byte]verifiedToken{}}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(Audience),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
	)
	return a, nil
}

// MaxTokenTTL bounds a token's lifetime: Mint refuses a longer one and Verify refuses a
// token whose expiry is further than this from its issue, so a leaked token dies in time.
const MaxTokenTTL = 90 * 24 * time.Hour

// Verify checks a bearer token and returns its principal. A token verified before is
// answered from memory until its expiry; after it, the whole check runs again (and refuses
// the token once the leeway has passed).
func (a *Verifier) Verify(token string) (Principal, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	if v, ok := a.verified[key]; ok {
		if now.Before(v.exp) {
			a.mu.Unlock()
			return v.p, nil
		}
		delete(a.verified, key)
	}
	a.mu.Unlock()
	p, exp, err := a.verify(token)
	if err != nil {
		return Principal{}, err
	}
	a.remember(key, verifiedToken{p: p, exp: exp}, now)
	return p, nil
}

// remember keeps a verified token, making room when the cache is full: the expired tokens
// go, and when they are too few, all of them (a new start costs one check per token).
func (a *Verifier) remember(key [sha256.Size]byte, v verifiedToken, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.verified) >= tokenCacheSize {
		for k, old := range a.verified {
			if !now.Before(old.exp) {
				delete(a.verified, k)
			}
		}
		if len(a.verified) > tokenCacheSize*3/4 {
			clear(a.verified)
		}
	}
	a.verified[key] = v
}

// verify runs every check of a token: signature, algorithm, audience, expiry, subject,
// lifetime. It returns the token's principal and expiry.
func (a *Verifier) verify(token string) (Principal, time.Time, error) {
	var c Claims
	if _, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.keys, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			// The library's "ed25519: verification error" does not say what to do.
			return Principal{}, time.Time{}, errors.New("the token is not signed by a key this server trusts (signed with another data folder's development key, or another key pair?)")
		}
		return Principal{}, time.Time{}, err
	}
	if strings.TrimSpace(c.Subject) == "" {
		return Principal{}, time.Time{}, errors.New("token has no subject")
	}
	// Measured from its issue when the token says it, and from now in any case, so that a
	// token without "iat" cannot outlive the bound either.
	if (c.IssuedAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxTokenTTL) || c.ExpiresAt.Sub(a.now()) > MaxTokenTTL+time.Minute {
		return Principal{}, time.Time{}, fmt.Errorf("the token's lifetime is longer than %s", MaxTokenTTL)
	}
	return Principal{Subject: c.Subject, Role: Role(c.Role)}, c.ExpiresAt.Time, nil
}

// Mint signs a token for subject with role, valid for ttl.
func Mint(key ed25519.PrivateKey, role Role, subject string, ttl time.Duration) (string, error) {
	if !slices.Contains(Roles, role) {
		return "", fmt.Errorf("unknown role %q (roles: %s)", role, roleList())
	}
	if strings.TrimSpace(subject) == "" {
		return "", errors.New("the subject is empty")
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", fmt.Errorf("lifetime %s: give more than 0 and at most %s", ttl, MaxTokenTTL)
	}
	now := time.Now()
	c := Claims{Role: string(role), RegisteredClaims: jwt.RegisteredClaims{
		Subject: subject, Audience: jwt.ClaimStrings{Audience}, Issuer: "orderctl",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
}

func roleList() string {
	s := make([]string, len(Roles))
	for i, r := range Roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// DevKeyFile is where orderd keeps the development signing key in its data folder when no
// key is configured; `orderctl token --data DIR` signs with it.
func DevKeyFile(dataDir string) string { return filepath.Join(dataDir, "dev-signing-key.pem") }

// LoadOrCreateKey reads the Ed25519 private key at path, creating it (mode 0600) when the
// file does not exist. created says whether it was made now.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = LoadPrivateKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process made it first: use theirs
		key, err = LoadPrivateKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	return priv, true, f.Close()
}

// LoadPrivateKey reads a PKCS #8 PEM Ed25519 private key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM \"PRIVATE KEY\"", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return priv, nil
}

// LoadPublicKey reads an Ed25519 public key from a PEM file: a "PUBLIC KEY" (PKIX), or a
// "PRIVATE KEY" whose public half is taken.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an Ed25519 key", path)
		}
		return pub, nil
	case "PRIVATE KEY":
		priv, err := LoadPrivateKey(path)
		if err != nil {
			return nil, err
		}
		return priv.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("%s: PEM block %q is not a key", path, blk.Type)
}

// EncodePublicKey is the PEM "PUBLIC KEY" form of pub, to hand to orderd's configuration.
func EncodePublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
