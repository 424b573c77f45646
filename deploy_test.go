package spaceorders_test

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/einvoice/spaceorders/domain"
)

// No Docker engine runs on the project's machines, so docker-compose.yml is checked for
// what would break it: the services and their health checks, the ports, and above all that
// every environment variable it sets is one the programs actually read.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Restart     string            `yaml:"restart"`
	Build       any               `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Networks any `yaml:"networks"`
}

func loadCompose(t *testing.T) composeFile { return loadComposeFile(t, "docker-compose.yml") }

func loadComposeFile(t *testing.T, name string) composeFile {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func TestComposeRunsTheWholeDeployment(t *testing.T) {
	c := loadCompose(t)
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"kurrentdb", "mailer", "mailpit", "nats", "orderd"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	for n, s := range c.Services {
		if len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s has no health check", n)
		}
	}
	// Whatever keeps state keeps it in a named volume, so `docker compose down` loses nothing.
	for _, n := range []string{"kurrentdb", "nats", "mailpit", "orderd"} {
		if !hasNamedVolume(c, c.Services[n]) {
			t.Errorf("%s keeps its data in no named volume", n)
		}
	}
	// Only the ports the README explains reach the host: the API and mailpit's page. An
	// insecure KurrentDB, an open NATS or SMTP relay on the host would be a way in.
	published := map[string][]string{"orderd": {"8080"}, "mailpit": {"8025"}}
	for n, s := range c.Services {
		var got []string
		for _, p := range s.Ports {
			got = append(got, p[strings.LastIndex(p, ":")+1:])
		}
		if !slices.Equal(got, published[n]) {
			t.Errorf("%s publishes ports %v, want %v", n, got, published[n])
		}
		if s.Restart != "unless-stopped" && s.Restart != "always" {
			t.Errorf("%s has restart policy %q: a crash or a reboot would leave it down", n, s.Restart)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"localhost:8080", "localhost:8025"} {
		if !strings.Contains(string(readme), p) {
			t.Errorf("the README does not explain the published %s", p)
		}
	}
	if c.Services["mailpit"].Environment["MP_DATABASE"] == "" {
		t.Error("mailpit has no MP_DATABASE: its volume would keep nothing")
	}
	for n, deps := range map[string][]string{"orderd": {"kurrentdb", "nats"}, "mailer": {"nats", "mailpit"}} {
		for _, d := range deps {
			if _, ok := c.Services[n].DependsOn[d]; !ok {
				t.Errorf("%s does not wait for %s", n, d)
			}
		}
	}
}

func hasNamedVolume(c composeFile, s composeService) bool {
	for _, v := range s.Volumes {
		if _, ok := c.Volumes[strings.SplitN(v, ":", 2)[0]]; ok {
			return true
		}
	}
	return false
}

// envRead lists the environment variables a program reads, as its own --help says: each
// setting's line is "--name, PREFIX_NAME", and an environment-only one "PREFIX_NAME".
func envRead(t *testing.T, prefix, program string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "run", "./cmd/"+program, "--help").Output()
	if err != nil {
		t.Fatalf("go run ./cmd/%s --help: %v", program, err)
	}
	found := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:--[a-z-]+, )?(`+prefix+`[A-Z0-9_]+)$`).FindAllStringSubmatch(string(out), -1) {
		found[m[1]] = true
	}
	if len(found) == 0 {
		t.Fatalf("no %s variables in %s --help:\n%s", prefix, program, out)
	}
	return found
}

func TestComposeSetsOnlyVariablesTheProgramsRead(t *testing.T) {
	c := loadCompose(t)
	for service, prefix := range map[string]string{"orderd": "ORDERD_", "mailer": "MAILER_"} {
		read := envRead(t, prefix, service)
		for name := range c.Services[service].Environment {
			if !read[name] {
				t.Errorf("%s sets %s, which the program does not read (it reads %v)", service, name, keys(read))
			}
		}
	}
}

// The KurrentDB server is pinned to the version the adapter and its stand-in were checked
// against, and takes appends as large as the store's contract allows (the conformance
// suite, run against it with EVENTSTORE_URL, appends an event of eventstore.MaxPayload).
func TestComposePinsTheKurrentDBServer(t *testing.T) {
	k := loadCompose(t).Services["kurrentdb"]
	if !strings.HasSuffix(k.Image, "/kurrentdb:25.1.4") {
		t.Errorf("kurrentdb image %q, want .../kurrentdb:25.1.4", k.Image)
	}
	if n, err := strconv.Atoi(k.Environment["KURRENTDB_MAX_APPEND_SIZE"]); err != nil || n < 8<<20 {
		t.Errorf("KURRENTDB_MAX_APPEND_SIZE %q, want at least 8 MiB (8388608)", k.Environment["KURRENTDB_MAX_APPEND_SIZE"])
	}
}

func TestComposeWiresThePartsTogether(t *testing.T) {
	c := loadCompose(t)
	od, ml := c.Services["orderd"].Environment, c.Services["mailer"].Environment
	store, err := url.Parse(od["ORDERD_STORE"])
	if err != nil || store.Scheme != "esdb" || store.Hostname() != "kurrentdb" || store.Port() != "2113" {
		t.Errorf("orderd's store %q is not the kurrentdb service", od["ORDERD_STORE"])
	}
	for who, u := range map[string]string{"orderd": od["ORDERD_NATS_URL"], "mailer": ml["MAILER_NATS_URL"]} {
		if u != "nats://nats:4222" {
			t.Errorf("%s's NATS URL %q is not the nats service", who, u)
		}
	}
	if ml["MAILER_SMTP_HOST"] != "mailpit" || ml["MAILER_SMTP_PORT"] != "1025" {
		t.Errorf("the mailer does not send to mailpit: %s:%s", ml["MAILER_SMTP_HOST"], ml["MAILER_SMTP_PORT"])
	}
	if od["ORDERD_MAILER"] != "false" {
		t.Error("orderd runs its own mailer beside the mailer service: emails would go out twice")
	}
	// One catalogue, mounted into both: the prices orderd charges and the payment details
	// the mailer sends must agree, and must not be the embedded examples.
	for who, s := range map[string]composeService{"orderd": c.Services["orderd"], "mailer": c.Services["mailer"]} {
		path := s.Environment[map[string]string{"orderd": "ORDERD_CATALOGUE", "mailer": "MAILER_CATALOGUE"}[who]]
		if path == "" || !slices.Contains(s.Volumes, "./deploy/catalogue.json:"+path+":ro") {
			t.Errorf("%s does not read the mounted deploy/catalogue.json (catalogue %q, volumes %v)", who, path, s.Volumes)
		}
	}
	b, err := os.ReadFile("deploy/catalogue.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := domain.ParseCatalogue(b); err != nil {
		t.Errorf("deploy/catalogue.json: %v", err)
	}
	if !strings.HasSuffix(od["ORDERD_ADDR"], ":8080") || od["ORDERD_JWT_PUBLIC_KEYS"] == "" {
		t.Errorf("orderd must listen on :8080 with configured keys, has %q and keys %q", od["ORDERD_ADDR"], od["ORDERD_JWT_PUBLIC_KEYS"])
	}
	conf, err := os.ReadFile("deploy/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*sync_interval:\s*always\s*$`).Match(conf) {
		t.Error("deploy/nats.conf does not fsync every write (sync_interval: always)")
	}
}

func TestDockerfileBuildsEveryEntrypoint(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if !strings.Contains(df, "CGO_ENABLED=0") || strings.Count(df, "FROM ") < 2 {
		t.Error("the Dockerfile must be multi-stage and build static binaries (CGO_ENABLED=0)")
	}
	c := loadCompose(t)
	for n, s := range c.Services {
		if s.Image != "spaceorders:latest" {
			continue
		}
		bins := append([]string{s.Entrypoint[0]}, s.Healthcheck.Test[1])
		for _, bin := range bins {
			name := filepath.Base(bin)
			if !strings.Contains(df, "./cmd/"+name) {
				t.Errorf("%s runs %s, which the Dockerfile does not build", n, name)
			}
			if _, err := os.Stat(filepath.Join("cmd", name)); err != nil {
				t.Errorf("%s runs %s: no cmd/%s", n, name, name)
			}
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The README's way to run the KurrentDB suite against the compose server publishes it on
// loopback only, through an override of the kurrentdb service.
func TestKurrentDBTestOverridePublishesOnLoopbackOnly(t *testing.T) {
	b, err := os.ReadFile("deploy/kurrentdb-tests.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 1 || !slices.Equal(c.Services["kurrentdb"].Ports, []string{"127.0.0.1:2113:2113"}) {
		t.Fatalf("override %+v: want kurrentdb's 2113 on 127.0.0.1 only", c.Services)
	}
	readme, _ := os.ReadFile("README.md")
	if !strings.Contains(string(readme), "-f deploy/kurrentdb-tests.yml up -d kurrentdb") {
		t.Error("the README does not say how to run the KurrentDB suite against the compose server")
	}
}
