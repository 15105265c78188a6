# tflint for terraform/ (scripts/validate_deploy.sh: tflint --recursive). The terraform ruleset is
# built into tflint; the AWS ruleset would be a plugin download, which this machine cannot make.
plugin "terraform" {
  enabled = true
  preset  = "all"
}

config {
  call_module_type = "local"
}
