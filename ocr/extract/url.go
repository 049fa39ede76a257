package extract

import (
	"regexp"
	"strings"

	"github.com/tallyhq/tally/ocr"
)

// commonTLDs are the top-level domains a bare domain (no scheme, no www.)
// must end with: without the list, every "THANK YOU.COME AGAIN" or
// "D.I.Y." would be a web address.
const commonTLDs = `com|net|org|co|io|my|us|ca|uk|au|nz|sg|in|biz|info|edu|gov|app|shop|store|online|site|me|tv|ly`

var (
	reURLScheme = lazyRegexp(`(?i)\bhttps?://[^\s<>"'` + "`" + `]+`)
	reURLWWW    = lazyRegexp(`(?i)\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:[/?#][^\s<>"'` + "`" + `]*)?`)
	reURLBare   = lazyRegexp(`(?i)\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.(?:` + commonTLDs + `)\b(?:/[^\s<>"'` + "`" + `]*)?`)
)

// findURLs returns the web addresses in text. E-mail addresses are not web
// addresses: a domain right after '@' is skipped.
func findURLs(text string) []Match {
	var out []Match
	add := func(start, end int) {
		// Sentence punctuation after an address is not part of it.
		for end > start && strings.ContainsRune(".,;:!?)]}'\"", rune(text[end-1])) {
			end--
		}
		value := text[start:end]
		if !hasScheme(value) {
			value = "http://" + value
		}
		out = append(out, Match{Type: ocr.ExtractURL, Value: value, Start: start, End: end})
	}
	notEmail := func(loc []int) bool {
		return wordBoundaryBefore(text, loc[0]) && (loc[0] == 0 || (text[loc[0]-1] != '@' && text[loc[0]-1] != '.' && text[loc[0]-1] != '-'))
	}
	for _, re := range []*regexp.Regexp{reURLScheme(), reURLWWW()} {
		for _, loc := range findAll(re, text, notEmail) {
			add(loc[0], loc[1])
		}
	}
	for _, loc := range findAll(reURLBare(), text, func(loc []int) bool {
		if !notEmail(loc) || (loc[1] < len(text) && text[loc[1]] == '@') {
			return false
		}
		// The name before the top-level domain needs two characters and a
		// letter ("1.co" and "A.US" are not sites).
		host := text[loc[0]:loc[1]]
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		name := host[:strings.LastIndexByte(host, '.')]
		label := name[strings.LastIndexByte(name, '.')+1:]
		return len(label) >= 2 && strings.ContainsFunc(label, isLetter)
	}) {
		add(loc[0], loc[1])
	}
	return out
}

func hasScheme(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func isLetter(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') }
