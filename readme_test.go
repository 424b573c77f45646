package spaceorders_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/internal/testwait"
)

// TestREADMEWalkthrough runs the README's walkthrough, as written, against a fresh orderd
// on a random port with a temporary data folder: the README cannot rot.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts orderd and runs curl: not in -short")
	}
	for _, tool := range []string{"bash", "curl", "grep", "sed", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walkthrough needs %s on PATH (.ci/run installs it)", tool)
		}
	}
	script := walkthrough(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "orderd")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/orderd").CombinedOutput(); err != nil {
		t.Fatalf("build orderd: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	data := filepath.Join(dir, "data")
	var logs bytes.Buffer
	orderd := exec.Command(bin, "--addr", addr, "--data", data)
	orderd.Stdout, orderd.Stderr = &logs, &logs
	if err := orderd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = orderd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- orderd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = orderd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("orderd's log:\n%s", logs.String())
		}
	})
	waitReady(t, "http://"+addr+"/readyz")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), "API=http://"+addr, "DATA="+data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^subscription [0-9a-f-]{36}$`),
		regexp.MustCompile(`"status":"cart".*"coTermination":true`),
		regexp.MustCompile(`"kind":"users","quantity":3,"months":\d+`),
		regexp.MustCompile(`(?m)^confirmed, \d+ cents to pay$`),
		regexp.MustCompile(`"method":"bank-transfer","amountDueCents":\d+,"paidCents":0`),
		regexp.MustCompile(`(?m)^order_id,subscription_id,.*amount_due_eur,amount_due_cents`),
		regexp.MustCompile(`(?m)^To: "Rossi & Figli S.r.l." <amministrazione@rossi.example>`),
		regexp.MustCompile(`(?m)^IBAN: IT\d\d`),
		regexp.MustCompile(`(?m)^Causale: Ordine [0-9a-f-]{36}`),
		regexp.MustCompile(`(?m)^Totale: \d+,\d\d €`), // plain UTF-8, not quoted-printable
		regexp.MustCompile(`(?m)^paid$`),
		regexp.MustCompile(`"purchasedGB":2,.*"totalGB":3`),
		regexp.MustCompile(`"kind":"users","quantity":3,"expiresOn":"\d{4}-\d\d-\d\d","daysLeft":36[56]`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the walkthrough's output has no match for %s", want)
		}
	}
	// The two co-termination answers: off costs less than on.
	totals := regexp.MustCompile(`(?m)^\d+$`).FindAllString(text, 2)
	if len(totals) != 2 || atoi(totals[0]) >= atoi(totals[1]) {
		t.Errorf("co-termination off then on should print a smaller total, then a larger one: got %v", totals)
	}
	if t.Failed() {
		t.Logf("walkthrough output:\n%s", text)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// walkthrough extracts the fenced block that follows the README's walkthrough marker.
func walkthrough(t *testing.T) string {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	state := 0 // 0: before the marker, 1: before the fence, 2: inside
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.TrimSpace(line) == "<!-- walkthrough -->":
			state = 1
		case state == 1 && strings.HasPrefix(line, "```sh"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			return b.String()
		case state == 2:
			fmt.Fprintln(&b, line)
		}
	}
	t.Fatal("README.md has no ```sh block after <!-- walkthrough -->")
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	testwait.Check(t, url+" answering 200", func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}
