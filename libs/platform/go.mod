module github.com/backend-prep/backend-prep/libs/platform

go 1.26.0
