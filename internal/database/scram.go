package database

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// scramVerifier is PostgreSQL's stored form of password (RFC 5802/7677
// SCRAM-SHA-256, as psql's \password computes it): CREATE ROLE and ALTER
// ROLE are sent this, so the password itself never reaches the server's
// statement log (log_statement = ddl). The passwords shipper makes are
// ASCII letters and digits, which SASLprep leaves as they are.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// newPassword is crypto/rand's Text: 26 letters and digits, 128 bits.
func newPassword() string { return rand.Text() }

// usablePassword reports whether p is one shipper made: kept across
// deploys, anything else is replaced.
func usablePassword(p string) bool {
	if len(p) < 24 || len(p) > 64 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
