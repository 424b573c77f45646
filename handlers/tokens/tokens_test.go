package tokens_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

// A token lives at most MaxTokenTTL: Mint refuses longer or negative lifetimes, and
// Verify refuses a token signed elsewhere with a longer one, with or without an issue time.
func TestTokensHaveABoundedLifetime(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{-time.Hour, 0, tokens.MaxTokenTTL + time.Minute} {
		if _, err := tokens.Mint(priv, tokens.RoleFinance, "clerk", ttl); err == nil {
			t.Errorf("Mint with ttl %s succeeded", ttl)
		}
	}
	auth, err := tokens.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := tokens.Mint(priv, tokens.RoleFinance, "clerk", tokens.MaxTokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(ok); err != nil {
		t.Errorf("a token of the longest lifetime: %v", err)
	}
	now := time.Now()
	sign := func(iat *jwt.NumericDate, exp time.Time) string {
		c := tokens.Claims{Role: "finance", RegisteredClaims: jwt.RegisteredClaims{
			Subject: "clerk", Audience: jwt.ClaimStrings{tokens.Audience},
			IssuedAt: iat, ExpiresAt: jwt.NewNumericDate(exp),
		}}
		s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := auth.Verify(sign(nil, now.Add(time.Hour))); err != nil {
		t.Errorf("a token without an issue time, valid for an hour: %v", err)
	}
	for name, tok := range map[string]string{
		"a year long":                sign(jwt.NewNumericDate(now), now.Add(365*24*time.Hour)),
		"no issue time, a year long": sign(nil, now.Add(365*24*time.Hour)),
	} {
		if _, err := auth.Verify(tok); err == nil || !strings.Contains(err.Error(), "lifetime") {
			t.Errorf("%s: Verify says %v", name, err)
		}
	}
}
