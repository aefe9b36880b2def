namespace EdgeMta.Protocol;
