package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Languages of the console; the first is the default.
var languages = []string{"en", "it"}

// messages holds every text of the pages, by key and language. A key missing in a
// language falls back to English, and a missing key shows as itself, so a gap is visible.
var messages = map[string]map[string]string{
	"title":               {"en": "Finance and audit console", "it": "Console finanza e revisione"},
	"skip":                {"en": "Skip to content", "it": "Vai al contenuto"},
	"nav":                 {"en": "Sections", "it": "Sezioni"},
	"nav.pending":         {"en": "Pending payments", "it": "Pagamenti in attesa"},
	"nav.timeline":        {"en": "Timelines", "it": "Cronologie"},
	"nav.models":          {"en": "Read models", "it": "Modelli di lettura"},
	"nav.log":             {"en": "Log verification", "it": "Verifica del registro"},
	"signedInAs":          {"en": "Signed in as", "it": "Accesso come"},
	"role":                {"en": "role", "it": "ruolo"},
	"signOut":             {"en": "Sign out", "it": "Esci"},
	"language":            {"en": "Language", "it": "Lingua"},
	"signIn":              {"en": "Sign in", "it": "Accedi"},
	"signIn.intro":        {"en": "Paste a bearer token (orderctl token), or open a link from orderctl console-link. Finance, auditor and operator tokens are accepted.", "it": "Incolla un token (orderctl token), oppure apri un link di orderctl console-link. Sono accettati i token dei ruoli finance, auditor e operator."},
	"signIn.token":        {"en": "Token", "it": "Token"},
	"signIn.bad":          {"en": "The token is not valid or has expired.", "it": "Il token non è valido o è scaduto."},
	"signIn.role":         {"en": "This token's role may not use the console.", "it": "Il ruolo di questo token non può usare la console."},
	"signIn.needed":       {"en": "Sign in to see this page.", "it": "Accedi per vedere questa pagina."},
	"forbidden":           {"en": "Your role may not see this page.", "it": "Il tuo ruolo non può vedere questa pagina."},
	"notFound":            {"en": "No such page.", "it": "Pagina inesistente."},
	"pending.title":       {"en": "Pending payments", "it": "Pagamenti in attesa"},
	"pending.intro":       {"en": "Confirmed orders not yet paid, oldest confirmation first.", "it": "Ordini confermati non ancora pagati, dal più vecchio."},
	"filters":             {"en": "Filters", "it": "Filtri"},
	"method":              {"en": "Payment method", "it": "Metodo di pagamento"},
	"method.all":          {"en": "All methods", "it": "Tutti i metodi"},
	"minAge":              {"en": "Confirmed at least this many days ago", "it": "Confermati da almeno questi giorni"},
	"apply":               {"en": "Apply", "it": "Applica"},
	"csv":                 {"en": "Download CSV", "it": "Scarica CSV"},
	"totals":              {"en": "Totals of every pending payment", "it": "Totali di tutti i pagamenti in attesa"},
	"byMethod":            {"en": "By method", "it": "Per metodo"},
	"byAge":               {"en": "By age (days since confirmation)", "it": "Per anzianità (giorni dalla conferma)"},
	"chart":               {"en": "Remaining to pay, by method and by age", "it": "Importo da pagare, per metodo e per anzianità"},
	"count":               {"en": "Orders", "it": "Ordini"},
	"due":                 {"en": "Due", "it": "Dovuto"},
	"paid":                {"en": "Paid", "it": "Pagato"},
	"remaining":           {"en": "Remaining", "it": "Da pagare"},
	"total":               {"en": "Total", "it": "Totale"},
	"order":               {"en": "Order", "it": "Ordine"},
	"holder":              {"en": "Holder", "it": "Intestatario"},
	"confirmedAt":         {"en": "Confirmed at", "it": "Confermato il"},
	"payBy":               {"en": "Pay by", "it": "Pagare entro"},
	"age":                 {"en": "Age (days)", "it": "Anzianità (giorni)"},
	"none":                {"en": "Nothing here.", "it": "Nessun elemento."},
	"nextPage":            {"en": "Next page", "it": "Pagina successiva"},
	"firstPage":           {"en": "First page", "it": "Prima pagina"},
	"credits.title":       {"en": "Credits due to customers", "it": "Crediti dovuti ai clienti"},
	"credits.total":       {"en": "Total owed", "it": "Totale dovuto"},
	"credits.amount":      {"en": "Amount", "it": "Importo"},
	"credits.reason":      {"en": "Reason", "it": "Motivo"},
	"timeline.title":      {"en": "Timeline of an order or subscription", "it": "Cronologia di un ordine o abbonamento"},
	"timeline.id":         {"en": "Order or subscription id (or stream name)", "it": "Id dell'ordine o dell'abbonamento (o nome dello stream)"},
	"timeline.show":       {"en": "Show", "it": "Mostra"},
	"timeline.unknown":    {"en": "No order or subscription has that id.", "it": "Nessun ordine o abbonamento ha questo id."},
	"timeline.events":     {"en": "Events", "it": "Eventi"},
	"version":             {"en": "Version", "it": "Versione"},
	"position":            {"en": "Position", "it": "Posizione"},
	"when":                {"en": "When (UTC)", "it": "Quando (UTC)"},
	"event":               {"en": "Event", "it": "Evento"},
	"who":                 {"en": "Who", "it": "Chi"},
	"channel":             {"en": "Channel", "it": "Canale"},
	"chain":               {"en": "Chain", "it": "Catena"},
	"chain.ok":            {"en": "linked", "it": "collegato"},
	"chain.broken":        {"en": "BROKEN", "it": "INTERROTTA"},
	"chain.intact":        {"en": "Hash chain intact.", "it": "Catena di hash integra."},
	"chain.brokenAt":      {"en": "Hash chain broken:", "it": "Catena di hash interrotta:"},
	"stateAt":             {"en": "State as of this event", "it": "Stato a questo evento"},
	"state.title":         {"en": "State as of version", "it": "Stato alla versione"},
	"state.field":         {"en": "Field", "it": "Campo"},
	"state.value":         {"en": "Value", "it": "Valore"},
	"models.title":        {"en": "Read models", "it": "Modelli di lettura"},
	"models.intro":        {"en": "Each read model folds the log; two processes at the same position agree on the digest.", "it": "Ogni modello di lettura deriva dal registro; due processi alla stessa posizione hanno lo stesso digest."},
	"model":               {"en": "Model", "it": "Modello"},
	"head":                {"en": "Log head", "it": "Testa del registro"},
	"lag":                 {"en": "Lag (commits)", "it": "Ritardo (commit)"},
	"digest":              {"en": "Digest", "it": "Digest"},
	"error":               {"en": "Error", "it": "Errore"},
	"rebuild":             {"en": "Rebuild", "it": "Ricostruisci"},
	"rebuilt":             {"en": "Rebuilt from zero:", "it": "Ricostruito da zero:"},
	"rebuild.only":        {"en": "Only operators may rebuild a model.", "it": "Solo gli operatori possono ricostruire un modello."},
	"log.title":           {"en": "The log: checkpoints and verification", "it": "Il registro: checkpoint e verifica"},
	"log.intro":           {"en": "Verification reads the whole log: every stream's hash chain, the order of commits, every position and stream version (a gap is damage), the running log digest, and each signed checkpoint against the data folder's key.", "it": "La verifica legge tutto il registro: la catena di hash di ogni stream, l'ordine dei commit, ogni posizione e versione (un buco è un danno), il digest progressivo e ogni checkpoint firmato con la chiave della cartella dei dati."},
	"log.expect":          {"en": "A digest recorded earlier (optional)", "it": "Un digest registrato in precedenza (facoltativo)"},
	"log.at":              {"en": "at position", "it": "alla posizione"},
	"log.verify":          {"en": "Verify the log", "it": "Verifica il registro"},
	"log.ok":              {"en": "Intact: every hash chain holds.", "it": "Integro: ogni catena di hash è valida."},
	"log.checked":         {"en": "The recorded digest matches.", "it": "Il digest registrato corrisponde."},
	"log.tampered":        {"en": "TAMPERED: the log is not as it was written.", "it": "MANOMESSO: il registro non è come è stato scritto."},
	"log.streams":         {"en": "Streams", "it": "Stream"},
	"log.events":          {"en": "Events", "it": "Eventi"},
	"log.checkpoints":     {"en": "Signed checkpoints", "it": "Checkpoint firmati"},
	"log.noCheckpoints":   {"en": "No signed checkpoint yet: orderd signs the log head every few thousand events, every minute while events come, and at shutdown.", "it": "Ancora nessun checkpoint firmato: orderd firma la testa del registro ogni qualche migliaio di eventi, ogni minuto mentre arrivano eventi, e alla chiusura."},
	"log.noKeys":          {"en": "No checkpoint public key in the data folder: the signatures cannot be checked here.", "it": "Nessuna chiave pubblica dei checkpoint nella cartella dei dati: qui le firme non si possono verificare."},
	"log.signedAt":        {"en": "Signed at", "it": "Firmato il"},
	"log.key":             {"en": "Key", "it": "Chiave"},
	"log.signedVerified":  {"en": "Signed checkpoints verified with the data folder's key:", "it": "Checkpoint firmati verificati con la chiave della cartella dei dati:"},
	"log.signedUnchecked": {"en": "not checked", "it": "non verificati"},
	"log.failed":          {"en": "The verification could not run:", "it": "Non è stato possibile eseguire la verifica:"},
}

// lang picks the page's language: ?lang=, then the console_lang cookie, then the
// browser's Accept-Language, then English.
func lang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); known(l) {
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && known(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if known(base) {
			return base
		}
	}
	return languages[0]
}

func known(l string) bool {
	for _, k := range languages {
		if l == k {
			return true
		}
	}
	return false
}

func translate(l, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if s, ok := m[l]; ok {
		return s
	}
	return m["en"]
}

// euros formats cents as the language writes money: "1.234,56 €" or "€1,234.56".
func euros(l string, cents int64) string {
	sign := ""
	u := uint64(cents)
	if cents < 0 {
		sign, u = "-", uint64(-cents)
	}
	whole, frac := u/100, u%100
	digits := fmt.Sprint(whole)
	sep, dec := ",", "."
	if l == "it" {
		sep, dec = ".", ","
	}
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	if l == "it" {
		return fmt.Sprintf("%s%s%s%02d €", sign, b.String(), dec, frac)
	}
	return fmt.Sprintf("%s€%s%s%02d", sign, b.String(), dec, frac)
}

// when writes an instant in UTC, to the second, as auditors compare it with the log.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
