package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// config is every setting, decoded once from flags, KEYMINT_* variables, the
// config file and defaults, in that order of precedence.
type config struct {
	Vault          string `mapstructure:"vault"`
	Identity       string `mapstructure:"identity"`
	PassphraseFile string `mapstructure:"passphrase-file"`
	// LockTimeout is parsed by parseDuration (it takes days, as every
	// duration does), not by the decoder.
	LockTimeout time.Duration `mapstructure:"-"`
	Output      string        `mapstructure:"output"`
	Config      string        `mapstructure:"config"`
	// Issuer is the iss of minted tokens; token issue and serve take it as
	// --issuer.
	Issuer string `mapstructure:"issuer"`

	// The settings of serve, with the names of its flags.
	Listen       string   `mapstructure:"listen"`
	TLSCert      string   `mapstructure:"tls-cert"`
	TLSKey       string   `mapstructure:"tls-key"`
	LogFormat    string   `mapstructure:"log-format"`
	TrustedProxy []string `mapstructure:"trusted-proxy"`

	// Etcd is how to reach a vault in etcd (vault: etcd://...).
	Etcd etcdSettings `mapstructure:",squash"`

	// identityExplicit is set when the identity file was named rather than
	// defaulted, so a missing file is an error instead of a fallback.
	identityExplicit bool
}

// etcdSettings reach a vault in etcd: TLS files, a user (whose password is
// KEYMINT_ETCD_PASSWORD or the first line of PasswordFile, never a setting's
// value), how long a request may take, and the cluster's transaction limits
// when raised from etcd's defaults.
type etcdSettings struct {
	CA           string `mapstructure:"etcd-ca"`
	Cert         string `mapstructure:"etcd-cert"`
	Key          string `mapstructure:"etcd-key"`
	Username     string `mapstructure:"etcd-username"`
	PasswordFile string `mapstructure:"etcd-password-file"`
	// Timeout is parsed by parseDuration, not by the decoder.
	Timeout         time.Duration `mapstructure:"-"`
	MaxTxnOps       int           `mapstructure:"etcd-max-txn-ops"`
	MaxRequestBytes int           `mapstructure:"etcd-max-request-bytes"`
}

// envNames maps each setting to its variable. The identity file's variable
// is KEYMINT_IDENTITY_FILE because KEYMINT_IDENTITY holds an identity itself,
// as SOPS does with SOPS_AGE_KEY_FILE and SOPS_AGE_KEY.
var envNames = map[string]string{
	"vault":           "KEYMINT_VAULT",
	"identity":        "KEYMINT_IDENTITY_FILE",
	"passphrase-file": "KEYMINT_PASSPHRASE_FILE",
	"lock-timeout":    "KEYMINT_LOCK_TIMEOUT",
	"output":          "KEYMINT_OUTPUT",
	"config":          "KEYMINT_CONFIG",
	"issuer":          "KEYMINT_ISSUER",
	"listen":          "KEYMINT_LISTEN",
	"tls-cert":        "KEYMINT_TLS_CERT",
	"tls-key":         "KEYMINT_TLS_KEY",
	"log-format":      "KEYMINT_LOG_FORMAT",
	"trusted-proxy":   "KEYMINT_TRUSTED_PROXY", // comma-separated

	"etcd-ca":                "KEYMINT_ETCD_CA",
	"etcd-cert":              "KEYMINT_ETCD_CERT",
	"etcd-key":               "KEYMINT_ETCD_KEY",
	"etcd-username":          "KEYMINT_ETCD_USERNAME",
	"etcd-password-file":     "KEYMINT_ETCD_PASSWORD_FILE",
	"etcd-timeout":           "KEYMINT_ETCD_TIMEOUT",
	"etcd-max-txn-ops":       "KEYMINT_ETCD_MAX_TXN_OPS",
	"etcd-max-request-bytes": "KEYMINT_ETCD_MAX_REQUEST_BYTES",
}

func addGlobalFlags(fs *pflag.FlagSet) {
	fs.String("vault", "", "vault file (default $XDG_DATA_HOME/keymint/vault.db)")
	fs.String("identity", "", "age identity file or SSH private key that unlocks the vault (default $XDG_CONFIG_HOME/keymint/identity.txt)")
	fs.String("passphrase-file", "", "file whose first line is the vault passphrase")
	var lockTimeout time.Duration
	durationVar(fs, &lockTimeout, "lock-timeout", 10*time.Second, "how long to wait for another keymint process to release the vault")
	fs.StringP("output", "o", "text", "output format: text or json")
	fs.String("config", "", "config file (default $XDG_CONFIG_HOME/keymint/config.yaml)")
}

// loadConfig decodes the settings once; commands read a.cfg, never viper.
func (a *app) loadConfig(cmd *cobra.Command) error {
	v := viper.New()
	for key, env := range envNames {
		if err := v.BindEnv(key, env); err != nil {
			return err
		}
		if f := cmd.Flags().Lookup(key); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return err
			}
		}
	}
	v.SetDefault("lock-timeout", "10s")
	v.SetDefault("output", "text")
	v.SetDefault("listen", defaultListen)
	v.SetDefault("log-format", "text")

	cfgFile := v.GetString("config")
	explicitCfg := cfgFile != ""
	if !explicitCfg {
		cfgFile = filepath.Join(a.configDir(), "config.yaml")
	}
	v.SetConfigFile(cfgFile)
	if err := v.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if explicitCfg || !(errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("read config %s: %w", cfgFile, err)
		}
	}
	if err := checkConfigKeys(v.AllKeys(), cfgFile); err != nil {
		return err
	}
	if err := v.Unmarshal(&a.cfg); err != nil {
		return usagef("config: %v", err)
	}
	lockTimeout, err := parseDuration(v.GetString("lock-timeout"))
	if err != nil {
		return usagef("lock-timeout %q (from --lock-timeout, KEYMINT_LOCK_TIMEOUT or the config file %s): use a duration such as 10s, 2m or 1d", v.GetString("lock-timeout"), cfgFile)
	}
	a.cfg.LockTimeout = lockTimeout
	if t := v.GetString("etcd-timeout"); t != "" {
		if a.cfg.Etcd.Timeout, err = parseDuration(t); err != nil || a.cfg.Etcd.Timeout <= 0 {
			return usagef("etcd-timeout %q (from KEYMINT_ETCD_TIMEOUT or the config file %s): use a positive duration such as 5s", t, cfgFile)
		}
	}
	if a.cfg.Etcd.MaxTxnOps < 0 || a.cfg.Etcd.MaxRequestBytes < 0 {
		return usagef("etcd-max-txn-ops and etcd-max-request-bytes must be positive")
	}
	e := &a.cfg.Etcd
	for _, p := range []*string{&a.cfg.Vault, &a.cfg.Identity, &a.cfg.PassphraseFile, &a.cfg.TLSCert, &a.cfg.TLSKey, &e.CA, &e.Cert, &e.Key, &e.PasswordFile} {
		*p = a.expandHome(*p)
	}
	if a.cfg.Vault == "" {
		a.cfg.Vault = filepath.Join(a.dataDir(), "vault.db")
	}
	a.cfg.identityExplicit = a.cfg.Identity != ""
	if a.cfg.Identity == "" {
		a.cfg.Identity = a.defaultIdentityPath()
	}
	switch a.cfg.Output = strings.ToLower(a.cfg.Output); a.cfg.Output {
	case "text", "json":
	default:
		return usagef("unknown output format %q: use text or json", a.cfg.Output)
	}
	if a.cfg.LockTimeout <= 0 {
		return usagef("--lock-timeout must be positive")
	}
	return nil
}

// checkConfigKeys refuses a setting keymint does not know: a mistyped
// `vualt:` would otherwise leave the default vault in use without a word.
func checkConfigKeys(keys []string, file string) error {
	for _, k := range keys {
		if _, known := envNames[k]; known {
			continue
		}
		hint := ""
		for name := range envNames {
			if editDistance(k, name) <= 2 {
				hint = fmt.Sprintf("; did you mean %q?", name)
				break
			}
		}
		return usagef("config %s: unknown setting %q%s (settings are %s)", file, k, hint, strings.Join(settingNames(), ", "))
	}
	return nil
}

func settingNames() []string {
	names := make([]string, 0, len(envNames))
	for name := range envNames {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// expandHome turns a leading "~/" (or a lone "~") into the home directory,
// as a shell would: settings from a config file or a variable get no shell.
func (a *app) expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home := a.getenv("HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		}
	}
	if home == "" {
		return p
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~"))
}

func (a *app) json() bool { return a.cfg.Output == "json" }

func (a *app) defaultIdentityPath() string {
	return filepath.Join(a.configDir(), "identity.txt")
}

// configDir is $XDG_CONFIG_HOME/keymint, or ~/.config/keymint.
func (a *app) configDir() string {
	return filepath.Join(a.xdg("XDG_CONFIG_HOME", ".config"), "keymint")
}

// dataDir is $XDG_DATA_HOME/keymint, or ~/.local/share/keymint.
func (a *app) dataDir() string {
	return filepath.Join(a.xdg("XDG_DATA_HOME", filepath.Join(".local", "share")), "keymint")
}

// stateDir is $XDG_STATE_HOME/keymint, or ~/.local/state/keymint: where this
// machine remembers the newest state of each vault it has opened, to refuse
// a rolled-back file.
func (a *app) stateDir() string {
	return filepath.Join(a.xdg("XDG_STATE_HOME", filepath.Join(".local", "state")), "keymint")
}

func (a *app) xdg(env, homeRel string) string {
	if d := a.getenv(env); d != "" && filepath.IsAbs(d) {
		return d
	}
	home := a.getenv("HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		}
	}
	return filepath.Join(home, homeRel)
}
