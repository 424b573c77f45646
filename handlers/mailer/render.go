package mailer

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"

	"github.com/einvoice/spaceorders/handlers/notifications"
)

//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

// Kinds of email.
const (
	KindInstructions = "instructions"
	KindReceipt      = "receipt"
)

// Content is a rendered email: subject, plain text and HTML.
type Content struct {
	Subject string
	Text    string
	HTML    string
}

// languages the emails are written in: a template of each kind for each.
var languages = []string{"it", "en"}

// Renderer turns notifications into emails with the embedded templates: text parts with
// text/template, HTML parts with html/template, so that holder names and other data are
// escaped in the HTML. The labels and payment details come in the notifications.
type Renderer struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// NewRenderer parses the embedded templates.
func NewRenderer() (*Renderer, error) {
	r := &Renderer{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, kind := range []string{KindInstructions, KindReceipt} {
		for _, lang := range languages {
			key := kind + "." + lang
			t, err := texttemplate.New(key+".txt").Option("missingkey=error").ParseFS(templateFS, "templates/"+key+".txt")
			if err != nil {
				return nil, fmt.Errorf("mailer: template %s.txt: %w", key, err)
			}
			h, err := htmltemplate.New(key+".html").Option("missingkey=error").ParseFS(templateFS, "templates/"+key+".html")
			if err != nil {
				return nil, fmt.Errorf("mailer: template %s.html: %w", key, err)
			}
			r.text[key], r.html[key] = t, h
		}
	}
	return r, nil
}

// Language is the language an email to a recipient with preference lang is written in:
// Italian unless the subscription says English.
func Language(lang string) string {
	if strings.EqualFold(strings.TrimSpace(lang), "en") {
		return "en"
	}
	return "it"
}

type lineView struct {
	Label  string
	Months int
	// MonthsText is the months in words that agree with the number: "1 mese", "3 mesi".
	MonthsText string
	NewExpiry  string
	OldExpiry  string
	Net        string
}

type instructionsView struct {
	Name, OrderID             string
	Lines                     []lineView
	Net, VAT, Total           string
	VATPercent                int64
	PayBy                     string
	MethodLabel               string
	Instructions              string
	Link                      string
	Beneficiary, IBAN, Reason string
	// ExpectedOn is the day the payment is expected in the books, the same working day the
	// read models show; WorkingDays says how many working days that is, in words.
	ExpectedOn, WorkingDays string
	// SpaceMonths is how long the space runs from the payment, in words.
	SpaceMonths string
}

type receiptView struct {
	Name, OrderID string
	Paid          string
	GB            int
	NewExpiry     string
	Services      []lineView
	// EarlierSpace lists earlier space aligned to the new expiry.
	EarlierSpace []lineView
	// Excess is what the payment brought beyond the total, owed back ("" when none).
	Excess string
}

// Instructions renders the payment instructions of a confirmed order.
func (r *Renderer) Instructions(order string, ev notifications.OrderConfirmedV1) (Content, error) {
	lang := Language(ev.Recipient.Language)
	m := ev.PaymentMethod
	if len(m.Label) == 0 {
		return Content{}, fmt.Errorf("%w: payment method %q is not in the catalogue", ErrPermanent, m.Code)
	}
	v := instructionsView{
		Name:         ev.Recipient.Name,
		OrderID:      order,
		Lines:        r.lines(ev.Quote.Lines, lang),
		Net:          FormatMoney(ev.Quote.NetCents, lang),
		VAT:          FormatMoney(ev.Quote.VATCents, lang),
		Total:        FormatMoney(ev.Quote.TotalCents, lang),
		VATPercent:   ev.Quote.VATPercent,
		PayBy:        FormatDate(ev.PayBy, lang),
		MethodLabel:  m.Label[lang],
		Instructions: m.Instructions[lang],
		Link:         m.PaymentLink,
		Beneficiary:  m.Beneficiary,
		IBAN:         m.IBAN,
		ExpectedOn:   FormatDate(ev.ExpectedRegistrationOn, lang),
		WorkingDays:  Count(ev.ExpectedRegistrationDays, lang, "giorno lavorativo", "giorni lavorativi", "working day", "working days"),
		SpaceMonths:  Months(ev.Quote.SpaceMonths, lang),
	}
	if m.IBAN != "" {
		v.Reason = PaymentReason(order, lang)
	}
	return r.render(KindInstructions, lang, v)
}

// PaymentReason is the bank transfer's payment reason (causale): it names the order, so
// that finance can match the transfer.
func PaymentReason(orderID, lang string) string {
	if lang == "en" {
		return "Order " + orderID
	}
	return "Ordine " + orderID
}

// Receipt renders what a paid order granted: the space and the services it aligned run to
// the same day, a year (the quote's months) from the day the payment completed.
func (r *Renderer) Receipt(order string, ev notifications.OrderPaidV1) (Content, error) {
	lang := Language(ev.Recipient.Language)
	var services, earlier []notifications.QuoteLine
	for _, l := range ev.Quote.Lines {
		switch l.Kind {
		case notifications.KindSpace:
		case notifications.KindEarlierSpace:
			earlier = append(earlier, l)
		default:
			services = append(services, l)
		}
	}
	v := receiptView{
		Name:         ev.Recipient.Name,
		OrderID:      order,
		Paid:         FormatMoney(ev.PaidCents+ev.ExcessCents, lang),
		GB:           ev.Quote.GB,
		NewExpiry:    FormatDate(ev.GrantedUntil, lang),
		Services:     r.lines(services, lang),
		EarlierSpace: r.lines(earlier, lang),
	}
	for _, l := range [][]lineView{v.Services, v.EarlierSpace} {
		for i := range l {
			l[i].NewExpiry = v.NewExpiry
		}
	}
	if ev.ExcessCents > 0 {
		v.Excess = FormatMoney(ev.ExcessCents, lang)
	}
	return r.render(KindReceipt, lang, v)
}

func (r *Renderer) lines(ls []notifications.QuoteLine, lang string) []lineView {
	out := make([]lineView, 0, len(ls))
	for _, l := range ls {
		out = append(out, lineView{
			Label:      label(l, lang),
			Months:     l.Months,
			MonthsText: Months(l.Months, lang),
			NewExpiry:  FormatDate(l.NewExpiry, lang),
			OldExpiry:  FormatDate(l.OldExpiry, lang),
			Net:        FormatMoney(l.NetCents, lang),
		})
	}
	return out
}

func label(l notifications.QuoteLine, lang string) string {
	if l.Kind == notifications.KindSpace {
		if lang == "en" {
			return "Extra space " + strconv.Itoa(l.Quantity) + " GB"
		}
		return "Spazio aggiuntivo " + strconv.Itoa(l.Quantity) + " GB"
	}
	if l.Kind == notifications.KindEarlierSpace {
		if lang == "en" {
			return "Extra space bought earlier " + strconv.Itoa(l.Quantity) + " GB"
		}
		return "Spazio aggiuntivo già acquistato " + strconv.Itoa(l.Quantity) + " GB"
	}
	label := l.Kind
	if t := l.Label[lang]; t != "" {
		label = t
	}
	if l.Quantity > 1 {
		label += " × " + strconv.Itoa(l.Quantity)
	}
	return label
}

func (r *Renderer) render(kind, lang string, v any) (Content, error) {
	key := kind + "." + lang
	var subj, text, html bytes.Buffer
	t := r.text[key]
	if err := t.ExecuteTemplate(&subj, "subject", v); err != nil {
		return Content{}, fmt.Errorf("%w: render %s subject: %v", ErrPermanent, key, err)
	}
	if err := t.Execute(&text, v); err != nil {
		return Content{}, fmt.Errorf("%w: render %s text: %v", ErrPermanent, key, err)
	}
	if err := r.html[key].Execute(&html, v); err != nil {
		return Content{}, fmt.Errorf("%w: render %s html: %v", ErrPermanent, key, err)
	}
	// A subject is one line, whatever the data put in it.
	s := strings.Join(strings.Fields(subj.String()), " ")
	return Content{Subject: s, Text: text.String(), HTML: html.String()}, nil
}
