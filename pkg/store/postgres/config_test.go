package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/store/postgres"
)

func TestConfigDefaultsAndQuoting(t *testing.T) {
	pc, err := postgres.Config{
		User: "atoll", Password: `it's a \secret`, DBName: "atoll db", TLSMode: postgres.TLSDisable,
	}.PoolConfig()
	require.NoError(t, err)
	cc := pc.ConnConfig
	require.Equal(t, "127.0.0.1", cc.Host)
	require.Equal(t, uint16(5432), cc.Port)
	require.Equal(t, `it's a \secret`, cc.Password)
	require.Equal(t, "atoll db", cc.Database)
	require.Nil(t, cc.TLSConfig)
	require.Equal(t, int32(10), pc.MaxConns)
	require.Equal(t, 5*time.Second, cc.ConnectTimeout)
	require.Equal(t, "atoll-cp", cc.RuntimeParams["application_name"])

	pc, err = postgres.Config{User: "u", DBName: "d", TLSMode: postgres.TLSRequire, MaxConns: 3}.PoolConfig()
	require.NoError(t, err)
	require.NotNil(t, pc.ConnConfig.TLSConfig)
	require.Equal(t, int32(3), pc.MaxConns)

	// pkg/config spells the verifying modes in camel case.
	require.ErrorContains(t, postgres.Config{User: "u", DBName: "d", TLSMode: "verifyFull"}.Validate(),
		"ATOLL_STORE_POSTGRES_TLS_CA_PATH")
	require.NoError(t, postgres.Config{User: "u", DBName: "d", TLSMode: "verifyNone"}.Validate())
}

func TestConfigValidateNamesTheVariables(t *testing.T) {
	err := postgres.Config{Port: 70000, TLSMode: "sometimes", TLSCertPath: "/c.pem", MaxConns: -1}.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"ATOLL_STORE_POSTGRES_PORT", "ATOLL_STORE_POSTGRES_USER", "ATOLL_STORE_POSTGRES_DB_NAME",
		"ATOLL_STORE_POSTGRES_TLS_MODE", "ATOLL_STORE_POSTGRES_TLS_CERT_PATH", "ATOLL_STORE_POSTGRES_MAX_CONNS",
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, postgres.Config{User: "u", Password: "hunter2", DBName: "d"}.String(), "hunter2")
}
