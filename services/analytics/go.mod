module github.com/backend-prep/backend-prep/services/analytics

go 1.26.0
