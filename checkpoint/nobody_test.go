package checkpoint

import "syscall"

var unixSysProcAttrNobody = syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
