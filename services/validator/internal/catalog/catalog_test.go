package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backend-prep/backend-prep/services/validator/internal/catalog"
)

func TestDefaultCatalog(t *testing.T) {
	c, err := catalog.Default()
	require.NoError(t, err)

	assert.Equal(t, "USD", c.Currency())
	assert.GreaterOrEqual(t, c.Len(), 18, "about 20 products")

	book, ok := c.Lookup("BOOK-001")
	require.True(t, ok, "BOOK-001 is the SKU every example uses")
	assert.Equal(t, "books", book.Category)
	assert.Positive(t, book.UnitPriceCents)

	categories := map[string]int{}
	for _, p := range c.Products("") {
		categories[p.Category]++
	}
	assert.GreaterOrEqual(t, len(categories), 3, "a few categories to filter by: %v", categories)

	var maxed bool
	for _, p := range c.Products("") {
		maxed = maxed || p.MaxQuantity == catalog.MaxQuantity
	}
	assert.True(t, maxed, "one product allows the global maximum, so quantity 1000 can be shown to pass")
}

func TestProducts(t *testing.T) {
	c, err := catalog.New("USD", []catalog.Product{
		product("OFFC-001", "office"),
		product("BOOK-002", "books"),
		product("BOOK-001", "books"),
	})
	require.NoError(t, err)

	tests := []struct {
		name     string
		category string
		want     []string
	}{
		{name: "empty category lists everything by sku", category: "", want: []string{"BOOK-001", "BOOK-002", "OFFC-001"}},
		{name: "a category lists only its products", category: "books", want: []string{"BOOK-001", "BOOK-002"}},
		{name: "an unknown category lists nothing", category: "garden", want: nil},
		{name: "categories match exactly", category: "Books", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, skus(c.Products(tt.category)))
		})
	}
}

func TestProductsIsACopy(t *testing.T) {
	c, err := catalog.New("USD", []catalog.Product{product("BOOK-001", "books")})
	require.NoError(t, err)

	c.Products("")[0].UnitPriceCents = 1

	p, ok := c.Lookup("BOOK-001")
	require.True(t, ok)
	assert.Equal(t, int64(1299), p.UnitPriceCents)
	assert.Equal(t, int64(1299), c.Products("")[0].UnitPriceCents)
}

func TestLookup(t *testing.T) {
	c, err := catalog.New("USD", []catalog.Product{product("BOOK-001", "books")})
	require.NoError(t, err)

	tests := []struct {
		name string
		sku  string
		want bool
	}{
		{name: "exact sku", sku: "BOOK-001", want: true},
		{name: "lower case is another sku", sku: "book-001", want: false},
		{name: "surrounding space is another sku", sku: " BOOK-001", want: false},
		{name: "empty", sku: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := c.Lookup(tt.sku)
			assert.Equal(t, tt.want, ok)
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name     string
		currency string
		mutate   func(*catalog.Product)
		products []catalog.Product // instead of mutate, when set
		wantErr  string
	}{
		{name: "no products", currency: "USD", products: []catalog.Product{}, wantErr: "no products"},
		{name: "missing currency", currency: "", wantErr: `currency "" is not an ISO 4217 code`},
		{name: "lower-case currency", currency: "usd", wantErr: `currency "usd" is not an ISO 4217 code`},
		{name: "currency symbol", currency: "$", wantErr: `currency "$" is not an ISO 4217 code`},
		{
			name: "duplicate sku", currency: "USD",
			products: []catalog.Product{product("BOOK-001", "books"), product("BOOK-002", "books"), product("BOOK-001", "books")},
			wantErr:  `products[2] (sku "BOOK-001"): duplicate sku, first at products[0]`,
		},
		{name: "empty sku", currency: "USD", mutate: func(p *catalog.Product) { p.SKU = "" }, wantErr: `products[0] (sku ""): sku is empty`},
		{name: "lower-case sku", currency: "USD", mutate: func(p *catalog.Product) { p.SKU = "book-001" }, wantErr: `products[0] (sku "book-001"): sku must be`},
		{name: "sku with a space", currency: "USD", mutate: func(p *catalog.Product) { p.SKU = "BOOK 001" }, wantErr: "sku must be"},
		{name: "sku with a trailing hyphen", currency: "USD", mutate: func(p *catalog.Product) { p.SKU = "BOOK-" }, wantErr: "sku must be"},
		{name: "sku with a Cyrillic letter", currency: "USD", mutate: func(p *catalog.Product) { p.SKU = "BOOK-00\u0421" }, wantErr: "sku must be"},
		{name: "sku too long", currency: "USD", mutate: func(p *catalog.Product) { p.SKU = strings.Repeat("A", 33) }, wantErr: "sku must be at most 32"},
		{name: "empty name", currency: "USD", mutate: func(p *catalog.Product) { p.Name = "  " }, wantErr: "name is empty"},
		{name: "empty category", currency: "USD", mutate: func(p *catalog.Product) { p.Category = "" }, wantErr: `category "" must be a lower-case word`},
		{name: "upper-case category", currency: "USD", mutate: func(p *catalog.Product) { p.Category = "Books" }, wantErr: `category "Books"`},
		{name: "zero price", currency: "USD", mutate: func(p *catalog.Product) { p.UnitPriceCents = 0 }, wantErr: "unit_price_cents 0 is outside 1..100000000"},
		{name: "negative price", currency: "USD", mutate: func(p *catalog.Product) { p.UnitPriceCents = -5 }, wantErr: "unit_price_cents -5 is outside"},
		{name: "price above the bound", currency: "USD", mutate: func(p *catalog.Product) { p.UnitPriceCents = catalog.MaxUnitPriceCents + 1 }, wantErr: "unit_price_cents 100000001 is outside"},
		{name: "max_quantity 0", currency: "USD", mutate: func(p *catalog.Product) { p.MaxQuantity = 0 }, wantErr: "max_quantity 0 is outside 1..1000"},
		{name: "max_quantity 1001", currency: "USD", mutate: func(p *catalog.Product) { p.MaxQuantity = 1001 }, wantErr: "max_quantity 1001 is outside 1..1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			products := tt.products
			if products == nil {
				p := product("BOOK-001", "books")
				if tt.mutate != nil {
					tt.mutate(&p)
				}
				products = []catalog.Product{p}
			}

			c, err := catalog.New(tt.currency, products)

			require.ErrorIs(t, err, catalog.ErrInvalid)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.Nil(t, c)
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	bad := product("BOOK-001", "books")
	bad.UnitPriceCents = 0
	bad.MaxQuantity = 0

	_, err := catalog.New("usd", []catalog.Product{bad})

	require.ErrorIs(t, err, catalog.ErrInvalid)
	assert.ErrorContains(t, err, "currency")
	assert.ErrorContains(t, err, "unit_price_cents 0")
	assert.ErrorContains(t, err, "max_quantity 0")
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{name: "not JSON", file: "currency: USD", wantErr: "invalid character"},
		{name: "empty file", file: "", wantErr: "EOF"},
		{name: "unknown field", file: `{"currency":"USD","products":[],"discount":5}`, wantErr: `unknown field "discount"`},
		{name: "unknown product field", file: `{"currency":"USD","products":[{"sku":"BOOK-001","price":12.99}]}`, wantErr: `unknown field "price"`},
		{name: "fractional price", file: `{"currency":"USD","products":[{"sku":"BOOK-001","unit_price_cents":12.99}]}`, wantErr: "unit_price_cents"},
		{name: "price as a string", file: `{"currency":"USD","products":[{"sku":"BOOK-001","unit_price_cents":"1299"}]}`, wantErr: "unit_price_cents"},
		{name: "trailing data", file: valid + `{}`, wantErr: "unexpected data after the catalog object"},
		{name: "null products", file: `{"currency":"USD","products":null}`, wantErr: "no products"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := catalog.Parse([]byte(tt.file))

			require.ErrorIs(t, err, catalog.ErrInvalid)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.Nil(t, c)
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("an empty path loads the default catalog", func(t *testing.T) {
		c, err := catalog.Load("")
		require.NoError(t, err)
		_, ok := c.Lookup("BOOK-001")
		assert.True(t, ok)
	})

	t.Run("a file replaces the default catalog", func(t *testing.T) {
		c, err := catalog.Load(writeFile(t, valid))
		require.NoError(t, err)
		assert.Equal(t, "EUR", c.Currency())
		assert.Equal(t, []string{"MUG-001"}, skus(c.Products("")))
	})

	t.Run("a missing file is an error naming it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.json")
		_, err := catalog.Load(path)
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.ErrorContains(t, err, path)
	})

	t.Run("a bad file is an error naming the file and the problem", func(t *testing.T) {
		path := writeFile(t, `{"currency":"USD","products":[{"sku":"BOOK-001","name":"x","category":"books","unit_price_cents":0,"max_quantity":1}]}`)
		_, err := catalog.Load(path)
		require.ErrorIs(t, err, catalog.ErrInvalid)
		assert.ErrorContains(t, err, path)
		assert.ErrorContains(t, err, `products[0] (sku "BOOK-001"): unit_price_cents 0`)
	})
}

const valid = `{"currency":"EUR","products":[{"sku":"MUG-001","name":"Mug","category":"kitchen","unit_price_cents":899,"max_quantity":10}]}`

func product(sku, category string) catalog.Product {
	return catalog.Product{SKU: sku, Name: "Product " + sku, Category: category, UnitPriceCents: 1299, MaxQuantity: 100}
}

func skus(products []catalog.Product) []string {
	var out []string
	for _, p := range products {
		out = append(out, p.SKU)
	}
	return out
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.json")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}
