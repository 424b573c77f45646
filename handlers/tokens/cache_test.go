package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func cacheKeys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signed(t *testing.T, priv ed25519.PrivateKey, aud string, exp time.Time) string {
	t.Helper()
	c := Claims{Role: string(RoleFinance), RegisteredClaims: jwt.RegisteredClaims{
		Subject: "clerk", Audience: jwt.ClaimStrings{aud}, ExpiresAt: jwt.NewNumericDate(exp),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A token is verified once and then answered from memory, until it expires: past its
// expiry (and the leeway) it is refused as it was before the cache.
func TestVerifiedTokensAreRememberedUntilTheyExpire(t *testing.T) {
	pub, priv := cacheKeys(t)
	a, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.now = func() time.Time { return now }
	exp := now.Add(time.Hour)
	tok := signed(t, priv, Audience, exp)
	for range 3 {
		p, err := a.Verify(tok)
		if err != nil || p.Subject != "clerk" || p.Role != RoleFinance {
			t.Fatalf("Verify: %+v, %v", p, err)
		}
	}
	if len(a.verified) != 1 {
		t.Fatalf("%d tokens remembered, want 1", len(a.verified))
	}
	// Within the leeway after its expiry the token is checked again and still accepted,
	// exactly as without the cache.
	now = exp.Add(10 * time.Second)
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	now = exp.Add(31 * time.Second)
	if _, err := a.Verify(tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired token, verified before: %v", err)
	}
	if len(a.verified) != 0 {
		t.Fatalf("an expired token is still remembered")
	}
}

// Nothing that fails a check enters the cache: a token signed by a key this server does not
// trust, one for another audience, a tampered one. Each is refused every time.
func TestRefusedTokensAreNeverRemembered(t *testing.T) {
	pub, priv := cacheKeys(t)
	_, other := cacheKeys(t)
	a, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	good := signed(t, priv, Audience, exp)
	tampered := good[:len(good)-4] + "AAAA"
	if strings.HasSuffix(good, "AAAA") {
		tampered = good[:len(good)-4] + "BBBB"
	}
	for name, tok := range map[string]string{
		"untrusted key":  signed(t, other, Audience, exp),
		"other audience": signed(t, priv, "another-service", exp),
		"tampered":       tampered,
	} {
		for range 2 {
			if _, err := a.Verify(tok); err == nil {
				t.Fatalf("%s: accepted", name)
			}
		}
	}
	if len(a.verified) != 0 {
		t.Fatalf("%d refused tokens remembered", len(a.verified))
	}
	// A token that passed elsewhere is not trusted here: caches are per Verifier.
	if _, err := a.Verify(good); err != nil {
		t.Fatal(err)
	}
	pub2, _ := cacheKeys(t)
	b, _ := NewVerifier(pub2)
	if _, err := b.Verify(good); err == nil {
		t.Fatal("a token verified by another authenticator's keys was accepted")
	}
}

// The cache is bounded: many different tokens never grow it past tokenCacheSize.
func TestTokenCacheIsBounded(t *testing.T) {
	pub, priv := cacheKeys(t)
	a, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for i := range tokenCacheSize + 100 {
		c := Claims{Role: string(RoleCustomer), RegisteredClaims: jwt.RegisteredClaims{
			Subject: fmt.Sprintf("c-%d", i), Audience: jwt.ClaimStrings{Audience}, ExpiresAt: jwt.NewNumericDate(exp),
		}}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verify(tok); err != nil {
			t.Fatal(err)
		}
		if len(a.verified) > tokenCacheSize {
			t.Fatalf("%d tokens remembered, bound %d", len(a.verified), tokenCacheSize)
		}
	}
}

// BenchmarkVerify: a token seen before against the full check.
//
//	go test -run '^$' -bench Verify ./handlers/httpapi
func BenchmarkVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tok, err := Mint(priv, RoleCustomer, "c-1", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	a, _ := NewVerifier(pub)
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full check", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := a.verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
