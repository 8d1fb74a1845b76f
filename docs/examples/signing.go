// Signing a request and verifying a receipt, in Go with the standard library alone (docs/channels.md,
// docs/receipts.md). Copy the functions; main() only checks them against docs/vectors, reading lines of
//   sign<TAB>secret<TAB>method<TAB>pathAndQuery<TAB>timestamp<TAB>nonce<TAB>body base64    -> the signature
//   verify<TAB>public key x (base64url)<TAB>invoice key<TAB>channel<TAB>receipt           -> valid <ms> | invalid
// (go run docs/examples/signing.go < lines: tests/e2e/test_examples.py does).
package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Headers are the four headers of a request; pathAndQuery exactly as sent (no "?" without a query).
func Headers(clientID, secret, method, pathAndQuery string, timestamp int64, nonce string, body []byte) map[string]string {
	ts := strconv.FormatInt(timestamp, 10)
	return map[string]string{
		"X-Client-Id": clientID, "X-Timestamp": ts, "X-Nonce": nonce,
		"X-Signature": Signature(secret, method, pathAndQuery, ts, nonce, body),
	}
}

func Signature(secret, method, pathAndQuery, timestamp, nonce string, body []byte) string {
	digest := sha256.Sum256(body)
	canonical := strings.Join([]string{strings.ToUpper(method), pathAndQuery, timestamp, nonce, hex.EncodeToString(digest[:])}, "\n")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(canonical))
	return hex.EncodeToString(mac.Sum(nil))
}

var digits = regexp.MustCompile(`^[0-9]{1,16}$`)

// VerifyReceipt gives the time (Unix ms) a receipt proves, or -1; x is the key's "x" in GET /v1/keys.
func VerifyReceipt(x, key, channel, receipt string) int64 {
	parts := strings.Split(receipt, ".")
	if len(parts) != 5 || parts[0] != "v2" || !digits.MatchString(parts[2]) {
		return -1
	}
	path, err1 := base64.RawURLEncoding.DecodeString(parts[4])
	sig, err2 := base64.RawURLEncoding.DecodeString(parts[3])
	public, err3 := base64.RawURLEncoding.DecodeString(x)
	if err1 != nil || err2 != nil || err3 != nil || len(path)%33 != 0 || len(public) != ed25519.PublicKeySize {
		return -1
	}
	node := sha256.Sum256(append([]byte{0}, key...))
	for at := 0; at < len(path); at += 33 {
		partner := path[at+1 : at+33]
		var pair []byte
		switch path[at] {
		case 0:
			pair = append(append([]byte{1}, partner...), node[:]...)
		case 1:
			pair = append(append([]byte{1}, node[:]...), partner...)
		default:
			return -1
		}
		node = sha256.Sum256(pair)
	}
	signed := strings.Join([]string{"prize-invoice-receipt v2", parts[1], channel, parts[2], hex.EncodeToString(node[:])}, "\n")
	if !ed25519.Verify(ed25519.PublicKey(public), []byte(signed), sig) {
		return -1
	}
	at, _ := strconv.ParseInt(parts[2], 10, 64)
	return at
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f := strings.Split(in.Text(), "\t")
		if f[0] == "sign" {
			body, _ := base64.StdEncoding.DecodeString(f[6])
			fmt.Println(Signature(f[1], f[2], f[3], f[4], f[5], body))
		} else if at := VerifyReceipt(f[1], f[2], f[3], f[4]); at >= 0 {
			fmt.Printf("valid %d\n", at)
		} else {
			fmt.Println("invalid")
		}
	}
}
