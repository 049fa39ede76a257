package textindex

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tallyhq/tally"
)

// MaxQueryLen is the longest query text ParseQuery accepts, in characters:
// far more than anyone types into a search box, short enough that a query
// cannot make the backend intersect hundreds of terms.
const MaxQueryLen = 256

// Term is one thing a query requires of a row.
type Term struct {
	// Text is the term as written, without its quotes or trailing *, and
	// with control characters turned into spaces: what a backend with its
	// own tokenizer should tokenize, so that the query splits into words
	// exactly as the indexed text did ("150₽" stays one token if the
	// backend's tokenizer thinks ₽ is part of a word).
	Text string
	// Words are the term's words in order: runs of letters, digits and
	// combining marks, for adapters that do not tokenize. A phrase has
	// several, and so does a bare token with punctuation inside ("12.50"
	// is 12 and 50, next to each other).
	Words []string
	// Quoted says the term was written as a "phrase".
	Quoted bool
	// Prefix says the last word is a prefix: it matches every word that
	// starts with it.
	Prefix bool
}

// Parsed is a query that ParseQuery accepted: rows match when they match
// every term.
type Parsed struct {
	Terms []Term
}

// ParseQuery parses Tally's query syntax:
//
//	milk bread      bare words: a row must contain all of them, in any order
//	"grand total"   a phrase: the words next to each other, in this order
//	choc*           a prefix: any word starting with choc
//	"grand tot"*    a phrase whose last word is a prefix
//
// Matching ignores case (and, in adapters that fold them, diacritics). There
// are no operators: AND, OR, NOT, NEAR, -x, ^x, col:x and parentheses are
// plain text. Punctuation separates words, so $12.50 finds the words 12 and
// 50 next to each other; inside quotes * is punctuation too.
//
// It rejects, with tally.ErrInvalidArgument, an empty query, one longer than
// MaxQueryLen characters, an unbalanced quote or parenthesis ("NEAR("), a *
// that follows no word or fewer than MinPrefixLen letters, and a query with
// no words at all (only punctuation, symbols or emoji).
func ParseQuery(text string) (Parsed, error) {
	if n := utf8.RuneCountInString(text); n > MaxQueryLen {
		return Parsed{}, fmt.Errorf("search query is %d characters, more than %d: %w", n, MaxQueryLen, tally.ErrInvalidArgument)
	}
	text = strings.ToValidUTF8(text, "\uFFFD")
	if strings.TrimSpace(text) == "" {
		return Parsed{}, fmt.Errorf("search query is empty: %w", tally.ErrInvalidArgument)
	}
	if open := unbalancedParens(text); open != 0 {
		return Parsed{}, fmt.Errorf("search query %q: a parenthesis is not closed; parentheses are not query syntax here — search for the words alone: %w", text, tally.ErrInvalidArgument)
	}
	var p Parsed
	var tok strings.Builder // the bare token being read
	flush := func() error {
		s := tok.String()
		tok.Reset()
		if s == "" {
			return nil
		}
		core := strings.TrimRight(s, "*")
		prefix := len(core) < len(s)
		words := splitWords(core)
		if len(words) == 0 {
			if prefix {
				return fmt.Errorf("search query %q: %q has no word before its *; write a prefix as choc*: %w", text, s, tally.ErrInvalidArgument)
			}
			return nil // punctuation only: nothing to search for
		}
		if prefix && len(words) == 1 && utf8.RuneCountInString(words[0]) < MinPrefixLen {
			return fmt.Errorf("search query %q: a prefix needs at least %d letters before its * (%q matches nearly every row): %w", text, MinPrefixLen, s, tally.ErrInvalidArgument)
		}
		p.Terms = append(p.Terms, Term{Text: cleanTerm(core), Words: words, Prefix: prefix})
		return nil
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == '"':
			if err := flush(); err != nil {
				return Parsed{}, err
			}
			end := strings.IndexByte(text[i+1:], '"')
			if end < 0 {
				return Parsed{}, fmt.Errorf("search query %q: a quote is not closed; write a phrase as \"grand total\": %w", text, tally.ErrInvalidArgument)
			}
			phrase := text[i+1 : i+1+end]
			i += 1 + end + 1
			prefix := false
			for i < len(text) && text[i] == '*' {
				prefix = true
				i++
			}
			words := splitWords(phrase)
			if len(words) == 0 {
				if prefix {
					return Parsed{}, fmt.Errorf("search query %q: the phrase before * has no words: %w", text, tally.ErrInvalidArgument)
				}
				continue // "" or "!!!": nothing to search for
			}
			p.Terms = append(p.Terms, Term{Text: cleanTerm(phrase), Words: words, Quoted: true, Prefix: prefix})
		case unicode.IsSpace(r):
			if err := flush(); err != nil {
				return Parsed{}, err
			}
			i += size
		default:
			tok.WriteRune(r)
			i += size
		}
	}
	if err := flush(); err != nil {
		return Parsed{}, err
	}
	if len(p.Terms) == 0 {
		return Parsed{}, fmt.Errorf("search query %q has no words to search for, only punctuation or symbols: %w", text, tally.ErrInvalidArgument)
	}
	return p, nil
}

// splitWords returns the words of s: maximal runs of letters, digits and
// combining marks that hold at least one letter or digit. Everything else
// (punctuation, symbols, emoji, control characters) separates words, much
// as in SQLite's unicode61 tokenizer.
// MinPrefixLen is the shortest prefix a query may end with *: shorter ones
// match nearly every row and cost a full scan.
const MinPrefixLen = 2

// unbalancedParens counts parentheses outside quotes: a query that opens
// one it never closes ("NEAR(") is taken for operator syntax gone wrong and
// refused with a clear message, rather than searched for half of it.
func unbalancedParens(text string) int {
	depth, quoted := 0, false
	for _, r := range text {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '(':
			depth++
		case r == ')':
			if depth == 0 {
				return -1
			}
			depth--
		}
	}
	return depth
}

func splitWords(s string) []string {
	var words []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !isWordRune(r) }) {
		if strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) >= 0 {
			words = append(words, w)
		}
	}
	return words
}

// cleanTerm turns control characters into spaces: a NUL would end the
// string SQLite's FTS5 parser reads.
func cleanTerm(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// FTS5 is the query as an SQLite FTS5 MATCH expression. Every term becomes
// one double-quoted FTS5 string holding its Text, so no user input can be an
// FTS5 operator, column filter or syntax error: inside a string FTS5 gives
// meaning only to the double quote, which is doubled (and which Text never
// holds anyway, quotes being Tally's phrase delimiters), and Text has no NUL.
// FTS5's tokenizer then splits the string exactly as it split the indexed
// text; terms are joined by FTS5's implicit AND.
func (p Parsed) FTS5() string {
	var b strings.Builder
	for i, t := range p.Terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(t.Text, `"`, `""`))
		b.WriteByte('"')
		if t.Prefix {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// String is the query in canonical Tally syntax, meaning the same query:
// what a search page shows back as "results for …".
func (p Parsed) String() string {
	var b strings.Builder
	for i, t := range p.Terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		text := t.Text
		if t.Quoted || strings.ContainsFunc(text, unicode.IsSpace) {
			text = `"` + strings.Join(strings.Fields(text), " ") + `"`
		}
		b.WriteString(text)
		if t.Prefix {
			b.WriteByte('*')
		}
	}
	return b.String()
}
